// Package auth authenticates every gRPC call with a bearer token and authorizes
// it by the caller's role.
//
// Tokens are issued by the listing service. A token is "bcx_<credential id>_<secret>";
// only a SHA-256 of the secret is stored (the secret is 32 random bytes, so a
// fast hash is enough: there is nothing to brute-force). The interceptors look
// the token up through a Verifier, put the Principal in the context, and check
// the method against a Policy that lists, for every method, the roles allowed
// to call it. A method missing from the policy is refused: new RPCs are closed
// until someone decides who may call them.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// Principal is who is calling.
type Principal struct {
	ParticipantID string
	// Number is the participant's numeric id in the matching core.
	Number       int64
	Role         typev1.Role
	CredentialID string
}

// Is reports whether the principal has one of the roles.
func (p Principal) Is(roles ...typev1.Role) bool { return slices.Contains(roles, p.Role) }

type ctxKey struct{}

// WithPrincipal returns a context carrying p. Servers use it; tests and
// in-process callers may too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the authenticated caller.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// MustFromContext returns the caller or an Unauthenticated error; handlers use
// it so that a handler reached without the interceptor fails closed.
func MustFromContext(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, rpcerr.Unauthenticated("no authenticated caller")
	}
	return p, nil
}

// ErrInvalidToken is what a Verifier returns for an unknown, revoked or
// malformed token.
var ErrInvalidToken = errors.New("invalid token")

// Verifier resolves a bearer token to its principal.
type Verifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

const tokenPrefix = "bcx_"

// NewToken makes a token for a credential and returns it with the hash to
// store.
func NewToken(credentialID string) (token string, hash []byte, err error) {
	if strings.Contains(credentialID, "_") || credentialID == "" {
		return "", nil, fmt.Errorf("credential id %q must be non-empty and contain no '_'", credentialID)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("token secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(secret)
	return tokenPrefix + credentialID + "_" + s, HashSecret(s), nil
}

// ParseToken splits a token into its credential id and secret.
func ParseToken(token string) (credentialID, secret string, err error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", ErrInvalidToken
	}
	credentialID, secret, ok = strings.Cut(rest, "_")
	if !ok || credentialID == "" || len(secret) != 43 {
		return "", "", ErrInvalidToken
	}
	return credentialID, secret, nil
}

// HashSecret is the stored form of a token's secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SecretMatches compares a presented secret with a stored hash in constant time.
func SecretMatches(secret string, storedHash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), storedHash) == 1
}

// rolePublic is not a role anyone has; a policy entry holding it marks a
// method open without a token. An entry that is merely empty denies everyone,
// so a role list emptied by mistake fails closed, not open.
const rolePublic typev1.Role = -1

// Public marks a method anyone may call without a token (health, reflection).
var Public = []typev1.Role{rolePublic}

// Policy maps a full method name ("/bcx.listing.v1.ListingService/GetInstrument")
// to the roles allowed to call it. An absent or empty entry denies everyone;
// an entry equal to Public needs no token.
type Policy map[string][]typev1.Role

// Merge adds other's entries; a method defined twice is a programming error.
func (p Policy) Merge(other Policy) Policy {
	for m, roles := range other {
		if _, dup := p[m]; dup {
			panic("auth: method in two policies: " + m)
		}
		p[m] = roles
	}
	return p
}

// Everyone is every authenticated role.
var Everyone = []typev1.Role{
	typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_WAREHOUSE, typev1.Role_ROLE_CLEARING_BANK,
	typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE,
}

// Authorize authenticates the caller of method (from the incoming
// metadata of ctx) with v and checks the policy: it returns ctx carrying the
// principal, or the Unauthenticated or PermissionDenied error to answer
// with. The interceptors call it; a server that merges interceptors may
// too.
func (p Policy) Authorize(ctx context.Context, v Verifier, method string) (context.Context, error) {
	roles, known := p[method]
	if known && slices.Contains(roles, rolePublic) {
		return ctx, nil // public
	}
	token, err := bearer(ctx)
	if err != nil {
		return nil, err
	}
	principal, err := v.Verify(ctx, token)
	if errors.Is(err, ErrInvalidToken) {
		return nil, rpcerr.Unauthenticated("invalid or revoked token")
	}
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if !known || !principal.Is(roles...) {
		return nil, rpcerr.Denied("role %s may not call %s", strings.TrimPrefix(principal.Role.String(), "ROLE_"), method)
	}
	return WithPrincipal(ctx, principal), nil
}

func bearer(ctx context.Context) (string, error) {
	// Only the one header: FromIncomingContext would copy them all.
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", rpcerr.Unauthenticated("missing authorization: send 'authorization: Bearer <token>'")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", rpcerr.Unauthenticated("authorization must be 'Bearer <token>'")
	}
	return strings.TrimSpace(token), nil
}

// UnaryInterceptor authenticates and authorizes unary calls.
func UnaryInterceptor(v Verifier, p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := p.Authorize(ctx, v, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates and authorizes a stream once, at its start.
func StreamInterceptor(v Verifier, p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := p.Authorize(ss.Context(), v, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// BearerCredentials attaches a token to outgoing calls (clients, tests, the
// services calling each other).
type BearerCredentials struct {
	Token string
	// Insecure allows sending the token over plaintext (loopback in dev).
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b BearerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b BearerCredentials) RequireTransportSecurity() bool { return !b.Insecure }
