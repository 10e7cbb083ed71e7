package listing

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bcx-exchange/bcx/pkg/auth"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

var _ auth.Verifier = (*Verifier)(nil)

// Verifier resolves bearer tokens against the credential store. Lookups are
// cached for a short TTL so that order entry does not hit the database per
// call; revoking through this process takes effect at once, through another
// process within the TTL.
type Verifier struct {
	store *Store
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cachedCredential
}

type cachedCredential struct {
	hash      []byte
	principal auth.Principal
	expires   time.Time
}

// maxCachedCredentials bounds the cache; past it, the cache is reset.
const maxCachedCredentials = 100_000

// NewVerifier returns a verifier over the store.
func NewVerifier(store *Store, ttl time.Duration) *Verifier {
	return &Verifier{store: store, ttl: ttl, now: time.Now, cache: map[string]cachedCredential{}}
}

// Verify implements auth.Verifier.
func (v *Verifier) Verify(ctx context.Context, token string) (auth.Principal, error) {
	credID, secret, err := auth.ParseToken(token)
	if err != nil {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	now := v.now()
	v.mu.Lock()
	c, ok := v.cache[credID]
	v.mu.Unlock()
	if !ok || now.After(c.expires) {
		c, err = v.load(ctx, credID, now)
		if err != nil {
			return auth.Principal{}, err
		}
	}
	if !auth.SecretMatches(secret, c.hash) {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return c.principal, nil
}

func (v *Verifier) load(ctx context.Context, credID string, now time.Time) (cachedCredential, error) {
	var c cachedCredential
	err := v.store.InTx(ctx, func(q Q) error {
		cred, hash, err := v.store.GetCredential(ctx, q, credID)
		if err != nil {
			return err
		}
		expires := now.Add(v.ttl)
		if cred.RevokedAt != nil {
			revoked := cred.RevokedAt.AsTime()
			if !revoked.After(now) {
				return auth.ErrInvalidToken
			}
			if revoked.Before(expires) { // still in a rotation's grace period
				expires = revoked
			}
		}
		part, err := v.store.GetParticipant(ctx, q, cred.ParticipantId)
		if err != nil {
			return err
		}
		if part.Status != listingv1.ParticipantStatus_PARTICIPANT_STATUS_ACTIVE {
			return auth.ErrInvalidToken
		}
		c = cachedCredential{hash: hash, expires: expires, principal: auth.Principal{
			ParticipantID: part.Id, Number: part.Number, Role: part.Role, CredentialID: cred.Id}}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return c, auth.ErrInvalidToken
	}
	if err != nil {
		return c, err
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedCredentials {
		v.cache = map[string]cachedCredential{}
	}
	v.cache[credID] = c
	v.mu.Unlock()
	return c, nil
}

// Forget drops a credential from the cache (after rotation or revocation).
func (v *Verifier) Forget(credID string) {
	v.mu.Lock()
	delete(v.cache, credID)
	v.mu.Unlock()
}
