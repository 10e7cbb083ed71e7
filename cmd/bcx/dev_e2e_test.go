package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/auth"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// buildBinary compiles bcx once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bcx")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startDev starts `bcx dev` and returns the address once the banner is out,
// with the time that took.
func startDev(t *testing.T, bin, dataDir string, extra ...string) (addr string, ready time.Duration, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bcx dev exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("bcx dev did not stop within 15s of SIGTERM")
		}
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			const prefix = "bcx dev: the whole exchange on "
			if line := sc.Text(); strings.HasPrefix(line, prefix) {
				found <- strings.Fields(strings.TrimPrefix(line, prefix))[0]
			}
		}
	}()
	select {
	case addr = <-found:
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("bcx dev printed no banner within 30s")
	}
	return addr, time.Since(start), stop
}

func dial(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	addr, ready, stop := startDev(t, bin, dataDir)
	// The brief's bar is 3 s on this machine; allow slack for a loaded CI box
	// but report the figure.
	t.Logf("first start ready in %v", ready)
	if ready > 10*time.Second {
		t.Errorf("first start took %v", ready)
	}
	health, err := healthpb.NewHealthClient(dial(t, addr, "")).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || health.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", health, err)
	}

	raw, err := os.ReadFile(filepath.Join(dataDir, credentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var creds listing.DevCredentials
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatal(err)
	}
	if creds.Listen != addr || creds.Operator.Token == "" || len(creds.Members) != 2 || creds.Warehouse.Token == "" || creds.Bank.Token == "" {
		t.Fatalf("dev-credentials.json = %+v", creds)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, credentialsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, %v", fi.Mode(), err)
	}

	member := listingv1.NewListingServiceClient(dial(t, addr, creds.Members[0].Token))
	resp, err := member.ListInstruments(ctx, &listingv1.ListInstrumentsRequest{})
	if err != nil || len(resp.Instruments) != 3 {
		t.Fatalf("ListInstruments = %v, %v", resp, err)
	}
	_, err = listingv1.NewListingServiceClient(dial(t, addr, "")).ListInstruments(ctx, &listingv1.ListInstrumentsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	_, err = member.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{Id: "M-X", Name: "x"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("member creating a participant: %v", err)
	}
	operator := listingv1.NewListingServiceClient(dial(t, addr, creds.Operator.Token))
	if _, err := operator.CreateCommodity(ctx, &listingv1.CreateCommodityRequest{Commodity: &listingv1.Commodity{
		Code: "SR", Name: "Sugar", Unit: "t", WeightScale: 3, Grades: []string{"SR1"}, DeliveryTolerance: "0.01"}}); err != nil {
		t.Fatal(err)
	}
	stop()

	// Restart on the same data directory: same tokens, data kept, no reseed.
	addr, ready, stop = startDev(t, bin, dataDir)
	defer stop()
	t.Logf("restart ready in %v", ready)
	operator = listingv1.NewListingServiceClient(dial(t, addr, creds.Operator.Token))
	if _, err := operator.GetCommodity(ctx, &listingv1.GetCommodityRequest{Code: "SR"}); err != nil {
		t.Fatalf("commodity created before restart: %v", err)
	}
	parts, err := operator.ListParticipants(ctx, &listingv1.ListParticipantsRequest{})
	if err != nil || len(parts.Participants) != 6 {
		t.Fatalf("participants after restart = %v, %v", parts, err)
	}
}
