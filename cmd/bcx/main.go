// Command bcx is the bulk commodity exchange: every service in one binary.
//
//	bcx dev                     the whole exchange in one process, embedded storage, demo data
//	bcx serve listing           one service alone, against PostgreSQL
//	bcx bench orderbook|...     benchmarks that print one JSON line
//	bcx statement inspect FILE  print a bank statement as JSON
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the exchange's time zone must resolve on machines without tzdata

	"github.com/bcx-exchange/bcx/pkg/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bcx:", err)
		os.Exit(1)
	}
}

const usage = `usage: bcx <command> [flags]

commands:
  dev                     run the whole exchange in one process (embedded storage, demo data)
  serve <service>         run one service (listing) against PostgreSQL
  bench <name>            run a benchmark and print one JSON line
  statement inspect FILE  parse a bank statement (camt.053/054, MT940) and print it as JSON
  statement import FILE   send a statement to the exchange as a clearing bank; print the reconciliation
  receipts verify FILE --root HASH
                          check a receipt's history proof (VerifyReceipt output) offline
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch args[0] {
	case "dev", "serve", "bench":
		// A server process, or a benchmark of one: the collector as in
		// production (see server.TuneGC).
		percent, limit := server.TuneGC()
		if args[0] != "bench" {
			logger.Info("garbage collector", "gc_percent", percent, "memory_limit_bytes", limit, "note", "-1: left to GOGC or GOMEMLIMIT, or memory size unknown")
		}
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, logger)
	case "serve":
		return runServe(ctx, args[1:], stdout, logger)
	case "bench":
		return runBench(ctx, args[1:], stdout)
	case "receipts":
		return runReceipts(args[1:], stdout)
	case "statement":
		return runStatement(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
