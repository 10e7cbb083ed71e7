package main

import (
	"context"
	"fmt"
	"io"
)

func runBench(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("bench: name a benchmark (orderbook)")
	}
	switch args[0] {
	}
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}
