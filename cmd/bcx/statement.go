package main

import (
	"io"

	"github.com/bcx-exchange/bcx/pkg/bankstatement"
)

// runStatement is `bcx statement inspect FILE`: a parsed bank statement as
// JSON, for operations staff, without importing anything.
func runStatement(args []string, stdout io.Writer) error {
	return bankstatement.Main(args, stdout)
}
