package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

type tokens map[string]auth.Principal

func (t tokens) Verify(_ context.Context, token string) (auth.Principal, error) {
	if p, ok := t[token]; ok {
		return p, nil
	}
	if token == "broken" {
		return auth.Principal{}, errors.New("credential store down")
	}
	return auth.Principal{}, auth.ErrInvalidToken
}

// The merged unary interceptor behaves as the chain it replaces: errors and
// panics mapped outermost (authentication's included), the caller
// authenticated and authorized before the handler.
func TestUnaryInterceptor(t *testing.T) {
	var logs bytes.Buffer
	ic := unaryInterceptor(slog.New(slog.NewTextHandler(&logs, nil)),
		tokens{"m": {ParticipantID: "M1", Role: typev1.Role_ROLE_MEMBER}, "o": {ParticipantID: "OPS", Role: typev1.Role_ROLE_OPERATOR}},
		auth.Policy{"/svc/Member": {typev1.Role_ROLE_MEMBER}, "/svc/Public": auth.Public})
	call := func(method, token string, h grpc.UnaryHandler) (any, error) {
		ctx := context.Background()
		if token != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
		}
		return ic(ctx, "req", &grpc.UnaryServerInfo{FullMethod: method}, h)
	}
	var seen string
	ok := func(ctx context.Context, req any) (any, error) {
		p, _ := auth.FromContext(ctx)
		seen = p.ParticipantID
		return "resp", nil
	}
	for _, tc := range []struct {
		method, token string
		h             grpc.UnaryHandler
		code          codes.Code
		who           string
	}{
		{"/svc/Member", "m", ok, codes.OK, "M1"},
		{"/svc/Public", "", ok, codes.OK, ""},
		{"/svc/Member", "", ok, codes.Unauthenticated, ""},
		{"/svc/Member", "bad", ok, codes.Unauthenticated, ""},
		{"/svc/Member", "o", ok, codes.PermissionDenied, ""},
		{"/svc/Unlisted", "m", ok, codes.PermissionDenied, ""},
		{"/svc/Member", "broken", ok, codes.Internal, ""},
		{"/svc/Member", "m", func(context.Context, any) (any, error) {
			return nil, rpcerr.Invalid("price", "off tick")
		}, codes.InvalidArgument, ""},
		{"/svc/Member", "m", func(context.Context, any) (any, error) {
			return nil, errors.New("pq: secret_table")
		}, codes.Internal, ""},
		{"/svc/Member", "m", func(context.Context, any) (any, error) { panic("boom") }, codes.Internal, ""},
	} {
		seen = ""
		resp, err := call(tc.method, tc.token, tc.h)
		if status.Code(err) != tc.code || seen != tc.who {
			t.Errorf("%s with %q: %v as %q; want %v as %q", tc.method, tc.token, err, seen, tc.code, tc.who)
		}
		if err == nil && resp != "resp" {
			t.Errorf("%s: response %v", tc.method, resp)
		}
		if err != nil && (strings.Contains(err.Error(), "secret_table") || strings.Contains(err.Error(), "boom")) {
			t.Errorf("%s: internal detail leaked: %v", tc.method, err)
		}
	}
	for _, want := range []string{"secret_table", "panic in handler", "credential store down"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	_, err := call("/svc/Member", "m", func(context.Context, any) (any, error) {
		return nil, rpcerr.InvalidReason("quantity", "REJECT_REASON_QUANTITY_NOT_WHOLE_LOTS", "not whole lots")
	})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || len(st.Details()) != 2 {
		t.Errorf("a refusal lost its field or reason: %v %v", st, st.Details())
	}
}
