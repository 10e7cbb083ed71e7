package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

func TestTokenRoundTrip(t *testing.T) {
	token, hash, err := NewToken("c0123")
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := ParseToken(token)
	if err != nil || id != "c0123" {
		t.Fatalf("ParseToken(%q) = %q, %v", token, id, err)
	}
	if !SecretMatches(secret, hash) {
		t.Fatal("secret does not match its own hash")
	}
	if SecretMatches(secret[:len(secret)-1]+"A", hash) && !strings.HasSuffix(secret, "A") {
		t.Fatal("altered secret matches")
	}
	if strings.Contains(string(hash), secret) {
		t.Fatal("hash contains the secret")
	}
	other, _, _ := NewToken("c0123")
	if other == token {
		t.Fatal("two tokens alike")
	}
	for _, bad := range []string{"", "bcx_", "bcx_c1", "xyz_c1_" + secret, "bcx__" + secret, "bcx_c1_short"} {
		if _, _, err := ParseToken(bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}
	if _, _, err := NewToken("has_underscore"); err == nil {
		t.Error("credential id with '_' accepted")
	}
}

type fixedVerifier map[string]Principal

func (f fixedVerifier) Verify(_ context.Context, token string) (Principal, error) {
	if p, ok := f[token]; ok {
		return p, nil
	}
	return Principal{}, ErrInvalidToken
}

func TestInterceptor(t *testing.T) {
	v := fixedVerifier{
		"member-token":   {ParticipantID: "M1", Role: typev1.Role_ROLE_MEMBER},
		"operator-token": {ParticipantID: "OPS", Role: typev1.Role_ROLE_OPERATOR},
	}
	policy := Policy{
		"/svc/MemberCall": {typev1.Role_ROLE_MEMBER},
		"/svc/Public":     Public,
		"/svc/Emptied":    {},
	}
	ic := UnaryInterceptor(v, policy)
	call := func(method, authz string) (Principal, error) {
		ctx := context.Background()
		if authz != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", authz))
		}
		var seen Principal
		_, err := ic(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			seen, _ = FromContext(ctx)
			return nil, nil
		})
		return seen, err
	}
	for _, tc := range []struct {
		method, authz string
		code          codes.Code
		who           string
	}{
		{"/svc/MemberCall", "Bearer member-token", codes.OK, "M1"},
		{"/svc/MemberCall", "bearer member-token", codes.OK, "M1"},
		{"/svc/MemberCall", "", codes.Unauthenticated, ""},
		{"/svc/MemberCall", "Basic member-token", codes.Unauthenticated, ""},
		{"/svc/MemberCall", "Bearer wrong", codes.Unauthenticated, ""},
		{"/svc/MemberCall", "Bearer operator-token", codes.PermissionDenied, ""},
		{"/svc/Unlisted", "Bearer operator-token", codes.PermissionDenied, ""}, // fail closed
		{"/svc/Public", "", codes.OK, ""},
		{"/svc/Emptied", "", codes.Unauthenticated, ""},                       // an empty list is not public
		{"/svc/Emptied", "Bearer operator-token", codes.PermissionDenied, ""}, // and denies everyone
	} {
		who, err := call(tc.method, tc.authz)
		if status.Code(err) != tc.code || who.ParticipantID != tc.who {
			t.Errorf("%s with %q: %v as %q; want %v as %q", tc.method, tc.authz, err, who.ParticipantID, tc.code, tc.who)
		}
	}
}
