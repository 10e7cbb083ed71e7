package listing

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/auth"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

var _ auth.Verifier = (*RemoteVerifier)(nil)

// RemoteVerifier authenticates tokens for a service running in another
// process than the listing service: it asks listing's WhoAmI with the
// presented token and caches the answer briefly, so revocation reaches every
// process within the TTL.
type RemoteVerifier struct {
	client listingv1.ListingServiceClient
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]remoteEntry
}

type remoteEntry struct {
	principal auth.Principal
	expires   time.Time
}

// NewRemoteVerifier verifies through a listing client that carries no
// credentials of its own.
func NewRemoteVerifier(client listingv1.ListingServiceClient, ttl time.Duration) *RemoteVerifier {
	return &RemoteVerifier{client: client, ttl: ttl, now: time.Now, cache: map[[32]byte]remoteEntry{}}
}

// Verify implements auth.Verifier.
func (v *RemoteVerifier) Verify(ctx context.Context, token string) (auth.Principal, error) {
	if _, _, err := auth.ParseToken(token); err != nil {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	key, now := sha256.Sum256([]byte(token)), v.now()
	v.mu.Lock()
	e, ok := v.cache[key]
	v.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.principal, nil
	}
	// The caller's own metadata must not leak into the lookup.
	out := metadata.NewOutgoingContext(context.WithoutCancel(ctx), metadata.Pairs("authorization", "Bearer "+token))
	out, cancel := context.WithTimeout(out, 5*time.Second)
	defer cancel()
	who, err := v.client.WhoAmI(out, &listingv1.WhoAmIRequest{})
	if status.Code(err) == codes.Unauthenticated {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	if err != nil {
		return auth.Principal{}, err
	}
	p := auth.Principal{ParticipantID: who.Participant.Id, Number: who.Participant.Number, Role: who.Participant.Role, CredentialID: who.CredentialId}
	v.mu.Lock()
	if len(v.cache) >= maxCachedCredentials {
		v.cache = map[[32]byte]remoteEntry{}
	}
	v.cache[key] = remoteEntry{principal: p, expires: now.Add(v.ttl)}
	v.mu.Unlock()
	return p, nil
}
