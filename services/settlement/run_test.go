package settlement_test

import (
	"context"
	"testing"
)

// TestRunCancelledAtStart: Run returns nil when its context ends while it
// is still starting (forwarding FX rates and preferences to the core), as
// it does once its loops run: a shutdown is not an error. A test that stops
// the service right after starting it must not see one either.
func TestRunCancelledAtStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.svc.Run(ctx); err != nil {
			t.Fatalf("Run with its context ended: %v", err)
		}
	})
}
