package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
)

// signingKey is a derived SigV4 signing key.
type signingKey [sha256.Size]byte

// deriveKey computes HMAC("AWS4"+secret, date) → region → service →
// "aws4_request".
func deriveKey(secret, date, region, service string) signingKey {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	k = hmacSum(k, terminator)
	var out signingKey
	copy(out[:], k)
	return out
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// defaultKeyCacheSize bounds the number of cached signing keys.
const defaultKeyCacheSize = 1024

type keyCacheID struct {
	accessKeyID, date, region string
}

type keyCacheEntry struct {
	secret string
	key    signingKey
}

// keyCache holds derived signing keys per access key, date and region, so
// that a client's requests on one day cost one HMAC instead of five. An
// entry is used only if the secret it was derived from still matches the
// one the lookup returned (compared in constant time), so a rotated secret
// never verifies against a stale key. The zero value is ready to use.
type keyCache struct {
	mu sync.Mutex // protects m
	m  map[keyCacheID]keyCacheEntry
}

// get returns the signing key for the scope, deriving and caching it on a
// miss. When the cache is full an arbitrary entry is evicted: keys are
// cheap to derive and a day's working set is small.
func (c *keyCache) get(accessKeyID, secret, date, region string) signingKey {
	id := keyCacheID{accessKeyID, date, region}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && len(e.secret) == len(secret) && subtle.ConstantTimeCompare([]byte(e.secret), []byte(secret)) == 1 {
		return e.key
	}
	k := deriveKey(secret, date, region, serviceS3)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[keyCacheID]keyCacheEntry)
	}
	if len(c.m) >= defaultKeyCacheSize {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[id] = keyCacheEntry{secret: secret, key: k}
	c.mu.Unlock()
	return k
}
