package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bcx-exchange/bcx/pkg/orderbook/obbench"
	"github.com/bcx-exchange/bcx/services/matching"
	"github.com/bcx-exchange/bcx/services/receipts"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// benchmarks maps `bcx bench <name>` to its entry point; each prints one JSON
// line with its measurements.
var benchmarks = map[string]func(args []string, stdout io.Writer) error{
	"orderbook":  obbench.Main,
	"matching":   matching.BenchMatchingMain,
	"grpc":       matching.BenchGRPCMain,
	"recovery":   matching.BenchRecoveryMain,
	"receipts":   receipts.BenchMain,
	"settlement": settlement.BenchMain,
}

func runBench(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("bench: name a benchmark (%s)", benchNames())
	}
	run, ok := benchmarks[args[0]]
	if !ok {
		return fmt.Errorf("bench: unknown benchmark %q (%s)", args[0], benchNames())
	}
	return run(args[1:], stdout)
}

func benchNames() string {
	names := ""
	for _, n := range []string{"orderbook", "matching", "grpc", "recovery", "receipts", "settlement"} {
		if _, ok := benchmarks[n]; ok {
			if names != "" {
				names += ", "
			}
			names += n
		}
	}
	return names
}
