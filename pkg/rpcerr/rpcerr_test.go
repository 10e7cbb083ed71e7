package rpcerr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestInterceptorMapsErrors(t *testing.T) {
	var logs bytes.Buffer
	ic := UnaryInterceptor(slog.New(slog.NewTextHandler(&logs, nil)))
	run := func(h grpc.UnaryHandler) error {
		_, err := ic(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/svc/M"}, h)
		return err
	}

	err := run(func(context.Context, any) (any, error) {
		return nil, fmt.Errorf("wrapped: %w", Invalid("spec.price_tick", "%q is not a decimal", "5,0"))
	})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %v", st.Code())
	}
	var field, reason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			field = d.FieldViolations[0].Field
		case *errdetails.ErrorInfo:
			reason = d.Reason
		}
	}
	if field != "spec.price_tick" || reason != "INVALID_ARGUMENT" {
		t.Fatalf("details field=%q reason=%q", field, reason)
	}

	err = run(func(context.Context, any) (any, error) {
		return nil, errors.New("pq: relation \"secret_table\" does not exist")
	})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret_table") {
		t.Fatalf("unexpected error leaked: %v", err)
	}
	if !strings.Contains(logs.String(), "secret_table") {
		t.Fatal("unexpected error was not logged")
	}

	err = run(func(context.Context, any) (any, error) { panic("boom") })
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
		t.Fatalf("panic: %v", err)
	}

	err = run(func(context.Context, any) (any, error) {
		return nil, Precondition("WRONG_PHASE", "instrument is closed")
	})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("precondition: %v", err)
	}
}
