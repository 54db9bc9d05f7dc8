package keys

import (
	"errors"
	"fmt"
)

// UnknownKeyError reports a key id that is not among the master keys the
// provider is configured with (its allow-list). The object was written
// under another key, or its metadata was altered.
type UnknownKeyError struct {
	Provider string
	KeyID    string
	Err      error // optional detail
}

func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("keys: %s key %q is not configured for use; add it to the key spec to read objects it wrapped", e.Provider, e.KeyID)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnknownKeyError) Unwrap() error { return e.Err }

// UnwrapError reports a wrapped data key that did not authenticate: the
// key ring holds a different key under that name, the KMS encryption
// context differs, or the wrapped key was altered.
type UnwrapError struct {
	Provider string
	KeyID    string
	Err      error
}

func (e *UnwrapError) Error() string {
	msg := fmt.Sprintf("keys: %s could not unwrap the data key under %q (wrong key ring or key, different encryption context, or altered metadata)", e.Provider, e.KeyID)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnwrapError) Unwrap() error { return e.Err }

// KeyDisabledError reports a master key that exists but cannot be used: a
// disabled KMS key, one pending deletion, or a deleted one.
type KeyDisabledError struct {
	Provider string
	KeyID    string
	Err      error
}

func (e *KeyDisabledError) Error() string {
	return fmt.Sprintf("keys: %s key %q is disabled, pending deletion or deleted; re-enable it (or cancel its deletion) to use it: %v", e.Provider, e.KeyID, e.Err)
}

func (e *KeyDisabledError) Unwrap() error { return e.Err }

// AccessDeniedError reports that the provider refused s3seal's credentials
// the operation on a key.
type AccessDeniedError struct {
	Provider  string
	KeyID     string
	Operation string
	Err       error
}

func (e *AccessDeniedError) Error() string {
	if e.Provider == KindAWSKMS {
		return fmt.Sprintf("keys: %s denied %s on key %q; grant s3seal's credentials kms:%s on it: %v", e.Provider, e.Operation, e.KeyID, e.Operation, e.Err)
	}
	return fmt.Sprintf("keys: %s denied %s on key %q; grant s3seal's identity that operation on the key: %v", e.Provider, e.Operation, e.KeyID, e.Err)
}

func (e *AccessDeniedError) Unwrap() error { return e.Err }

// UnavailableError reports that the key provider could not be reached or
// refused to serve (network error, timeout, throttling), or, from Cache,
// that renewing the data key for new writes failed. It is transient; the
// request may be retried. New writes never fall back to anything weaker.
type UnavailableError struct {
	Provider  string
	Operation string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("keys: key provider %s unavailable for %s: %v", e.Provider, e.Operation, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// WriteOnlyError reports that the key provider holds only public keys for
// this data (age recipients without an identity): it wraps new data keys
// but can never unwrap one, so s3seal can store objects but not read them
// back. Reading needs an s3seal configured with an identity, or the offline
// s3seal decrypt --identity. It is neither transient nor a wrong key.
type WriteOnlyError struct {
	Provider string
	// KeyID is the stored key id of the object (its recipient set).
	KeyID string
	// Operation is what was refused: "Decrypt" or "Rewrap".
	Operation string
}

func (e *WriteOnlyError) Error() string {
	return fmt.Sprintf("keys: s3seal holds only public keys for this data (%s key %q): it can store objects but not read them back (%s refused); "+
		"read them through an s3seal configured with an identity (identity=FILE in the key spec) or offline with s3seal decrypt --identity FILE",
		e.Provider, e.KeyID, e.Operation)
}

// IsWrongKey reports whether err means that the stored data key cannot be
// unwrapped with the configured keys (unknown key id or an unwrap failure),
// as opposed to a transient or permission problem.
func IsWrongKey(err error) bool {
	var u *UnknownKeyError
	var w *UnwrapError
	return errors.As(err, &u) || errors.As(err, &w)
}
