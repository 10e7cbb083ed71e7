package main

import (
	"fmt"
	"io"
	"os"

	"github.com/bcx-exchange/bcx/services/receipts"
)

// runReceipts is `bcx receipts verify FILE --root HASH`: the offline check of
// a receipt's history against a published registry root.
func runReceipts(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("receipts: usage: bcx receipts verify FILE|- --root [INDEX:]HASH")
	}
	return receipts.VerifyMain(args[1:], os.Stdin, stdout)
}
