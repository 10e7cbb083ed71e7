package main

import (
	"flag"
	"os"
)

// envOr returns the environment variable's value or def; flags then override
// it. Configuration is read here, once, and passed down.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newFlagSet(name string) *flag.FlagSet {
	return flag.NewFlagSet("bcx "+name, flag.ContinueOnError)
}
