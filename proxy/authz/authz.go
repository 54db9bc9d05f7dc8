// Package authz decides whether a client may make a request, from the
// canonical request (package s3) alone, before any encryption mode runs.
//
// # What is checked
//
// A request is authorized as a whole, and every object key it touches is
// checked: the target, a copy source (read under its own rule), every key
// of a DeleteObjects request (delete). For each, in this order:
//
//   - the client's permissions (Client): which buckets it may use, and per
//     bucket and key prefix which actions (read, list, create, write,
//     delete); bucket configuration, ACL grants and governance bypass need
//     Admin;
//   - s3seal's reserved storage (Reserved, e.g. the certificate storage
//     prefix): refused whole, to every client and by every operation;
//   - the policy rules (package policy) that govern the key: deny rules
//     refuse what their scope covers.
//
// A DeleteObjects request is answered per key, as S3 does: keys that may
// not be deleted are left out of what reaches the store and reported as
// AccessDenied entries of the result (Decision.Refused). Listings must lie
// within a prefix the client may list, may not reach into reserved storage
// or a deny-all rule, and have the keys under them filtered out
// (Decision.Filter) when the listing's range includes them.
package authz

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
)

// Action is what a permission allows.
type Action string

// Actions.
const (
	// Read allows GetObject, HeadObject, GetObjectAttributes, reading an
	// object's tags, ACL, retention and legal hold, and using the object
	// as a copy source.
	Read Action = "read"
	// List allows listing keys (the listing's prefix must lie within the
	// permission's prefix), uploads and parts, HeadBucket and reading
	// bucket configuration.
	List Action = "list"
	// Create allows creating objects that do not exist yet: s3seal adds
	// If-None-Match: * to PutObject and CompleteMultipartUpload, so an
	// existing object is never replaced; CopyObject is refused (stores
	// do not all honour the condition on copies).
	Create Action = "create"
	// Write allows creating and replacing objects and changing an
	// object's tags, ACL (private only without Admin), retention and
	// legal hold. It includes Create.
	Write Action = "write"
	// Delete allows deleting objects and object versions.
	Delete Action = "delete"
)

// Actions lists every action.
func Actions() []Action { return []Action{Read, List, Create, Write, Delete} }

// DefaultActions are a client's actions when its configuration names none.
func DefaultActions() []Action { return []Action{Read, List, Write, Delete} }

// ParseAction parses an action name.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown action %q (want read, list, create, write or delete)", s)
}

// Grant allows actions on the keys under Prefix in the buckets matching
// Bucket.
type Grant struct {
	// Bucket is a bucket name or a glob (*, ?, [...]); empty means every
	// bucket the client may use.
	Bucket string
	// Prefix limits the grant to keys starting with it; empty means the
	// whole bucket.
	Prefix  string
	Actions []Action
}

func (g *Grant) allows(a Action) bool {
	for _, x := range g.Actions {
		if x == a || x == Write && a == Create {
			return true
		}
	}
	return false
}

func (g *Grant) matchesBucket(bucket string) bool {
	return g.Bucket == "" || matchGlob(g.Bucket, bucket)
}

// Client is what s3seal knows about a client once it is authenticated.
type Client struct {
	// Name identifies the client in logs, audit records and errors.
	Name string
	// Buckets limits the client to buckets matching these names or globs;
	// empty means every bucket.
	Buckets []string
	// Grants are the client's permissions. Nil means DefaultActions on
	// every bucket the client may use.
	Grants []Grant
	// Admin allows changing bucket configuration, ACLs other than
	// private, ACL grants, and bypassing governance-mode retention.
	Admin bool
}

// AllowedBucket reports whether the client may use bucket at all.
func (c *Client) AllowedBucket(bucket string) bool {
	if len(c.Buckets) == 0 {
		return true
	}
	for _, b := range c.Buckets {
		if matchGlob(b, bucket) {
			return true
		}
	}
	return false
}

func (c *Client) grants() []Grant {
	if c.Grants != nil {
		return c.Grants
	}
	return []Grant{{Actions: DefaultActions()}}
}

// may reports whether the client may do a on key (a key prefix for
// listings) in bucket. For listings, key is the listing's prefix and must
// lie within the grant's prefix.
func (c *Client) may(a Action, bucket, key string) bool {
	if !c.AllowedBucket(bucket) {
		return false
	}
	for _, g := range c.grants() {
		if g.matchesBucket(bucket) && strings.HasPrefix(key, g.Prefix) && g.allows(a) {
			return true
		}
	}
	return false
}

// mayAnywhere reports whether the client may do a somewhere in bucket.
func (c *Client) mayAnywhere(a Action, bucket string) bool {
	if !c.AllowedBucket(bucket) {
		return false
	}
	for _, g := range c.grants() {
		if g.matchesBucket(bucket) && g.allows(a) {
			return true
		}
	}
	return false
}

// listablePrefixes returns the prefixes the client may list in bucket, for
// error messages.
func (c *Client) listablePrefixes(bucket string) []string {
	var out []string
	for _, g := range c.grants() {
		if g.matchesBucket(bucket) && g.allows(List) {
			out = append(out, g.Prefix)
		}
	}
	return out
}

// StatePrefix is the key prefix where s3seal keeps state of its own in the
// buckets it serves (envelope multipart uploads): never a client's
// objects, never rewritten, reserved where it is used.
const StatePrefix = ".s3seal/"

// Reserved is a bucket prefix s3seal uses itself; no client may touch it.
type Reserved struct {
	// Bucket is a bucket name or glob ("*": every bucket).
	Bucket, Prefix string
	// Why completes "s3seal reserves this prefix: ..." in errors.
	Why string
	// KeysOnly reserves only the keys under Prefix: the bucket itself
	// may still be configured and deleted. Otherwise configuring or
	// deleting the bucket is refused too (its reserved keys would be
	// exposed or lost with it).
	KeysOnly bool
}

func (r *Reserved) inBucket(bucket string) bool { return matchGlob(r.Bucket, bucket) }

func (r *Reserved) covers(bucket, key string) bool {
	return r.inBucket(bucket) && strings.HasPrefix(key, r.Prefix)
}

// Authorizer decides requests. It is immutable and safe for concurrent
// use; a configuration reload builds a new one.
type Authorizer struct {
	// Policy supplies the rules; nil means passthrough everywhere.
	Policy   *policy.Engine
	Reserved []Reserved
}

// Decision is what authorization allowed, for the later stages.
type Decision struct {
	// Rule governs the target key (for bucket-level requests, the rule of
	// the bucket's empty prefix).
	Rule *policy.Rule
	// SourceRule governs the copy source; nil without one.
	SourceRule *policy.Rule
	// CreateOnly means the client may create but not replace objects and
	// the request creates one (PutObject, CompleteMultipartUpload): it
	// must reach the store with If-None-Match: *.
	CreateOnly bool
	// Refused holds, for DeleteObjects, the reason each refused key (by
	// index into the request's objects) may not be deleted. The other
	// keys may.
	Refused map[int]*s3err.Error
	// Filter, set for listings whose range includes keys no client may
	// see (reserved storage, deny-all rules), says whether a listed key
	// or common prefix may be shown. Nil means show everything.
	Filter *Filter
}

var passthrough = &policy.Rule{Name: "default", Mode: policy.Passthrough}

func (a *Authorizer) match(bucket, key string) *policy.Rule {
	if a.Policy == nil {
		return passthrough
	}
	return a.Policy.Match(bucket, key)
}

// Authorize decides req for client c; hdr is the request's headers (ACL,
// encryption and condition headers matter). A refusal is an *s3err.Error
// to send as it is.
func (a *Authorizer) Authorize(c *Client, req *s3.Request, hdr http.Header) (*Decision, error) {
	if req.Op == s3.OpUnknown {
		return nil, unknownOp(req)
	}
	info := req.Info
	d := &Decision{}
	if info.Level == s3.LevelService {
		// ListBuckets only; the answer is filtered to the client's
		// buckets by the handler.
		d.Rule = a.match("", "")
		return d, nil
	}
	bucket := req.Bucket
	if !c.AllowedBucket(bucket) {
		return nil, denied("client %q may not use bucket %q", c.Name, bucket)
	}
	if err := a.checkHeaders(c, req, hdr); err != nil {
		return nil, err
	}
	switch info.Level {
	case s3.LevelBucket:
		d.Rule = a.match(bucket, "")
		if err := a.bucketLevel(c, req, d); err != nil {
			return nil, err
		}
	case s3.LevelObject:
		d.Rule = a.match(bucket, req.Key)
		if err := a.object(c, req, hdr, d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// checkHeaders refuses what only an administrator may ask for in headers:
// ACLs other than private, grants, bypassing governance retention.
func (a *Authorizer) checkHeaders(c *Client, req *s3.Request, hdr http.Header) error {
	if c.Admin {
		return nil
	}
	if v := strings.TrimSpace(hdr.Get("X-Amz-Acl")); v != "" && !strings.EqualFold(v, "private") {
		return denied("client %q may not set the canned ACL %q: only administrators may make objects or buckets accessible to others (s3seal grants private ACLs only)", c.Name, clip(v))
	}
	for k := range hdr {
		if len(k) > len("x-amz-grant-") && strings.EqualFold(k[:len("x-amz-grant-")], "x-amz-grant-") {
			return denied("client %q may not grant access with %s: only administrators may", c.Name, k)
		}
	}
	if hdr.Get("X-Amz-Bypass-Governance-Retention") != "" {
		return denied("client %q may not bypass governance-mode retention: only administrators may", c.Name)
	}
	return nil
}

func (a *Authorizer) bucketLevel(c *Client, req *s3.Request, d *Decision) error {
	bucket := req.Bucket
	for i := range a.Reserved {
		r := &a.Reserved[i]
		if !r.inBucket(bucket) || r.KeysOnly {
			continue
		}
		if r.Prefix == "" || req.Info.Access == s3.AccessConfigure || req.Info.Access == s3.AccessDeleteBucket {
			return reservedError(r, bucket)
		}
	}
	switch req.Info.Access {
	case s3.AccessList:
		switch req.Op {
		case s3.OpListObjects, s3.OpListObjectsV2, s3.OpListObjectVersions, s3.OpListMultipartUploads:
			return a.listing(c, req, d)
		}
		if !c.mayAnywhere(List, bucket) {
			return denied("client %q may not list or read the configuration of bucket %q", c.Name, bucket)
		}
	case s3.AccessConfigure:
		if !c.Admin {
			return denied("client %q may not change the configuration of bucket %q (%s): only administrators may", c.Name, bucket, req.Op)
		}
		if rule := d.Rule; rule.Mode == policy.Deny && rule.DenyScope() != policy.DenyPlaintextWrites {
			return s3err.AccessDenied.WithMessage("%s", rule.DenyMessage())
		}
	case s3.AccessCreateBucket:
		if !c.may(Write, bucket, "") {
			return denied("client %q may not create bucket %q (it needs write permission on the whole bucket)", c.Name, bucket)
		}
		if rule := d.Rule; rule.Mode == policy.Deny && rule.DenyScope() != policy.DenyPlaintextWrites {
			return s3err.AccessDenied.WithMessage("%s", rule.DenyMessage())
		}
	case s3.AccessDeleteBucket:
		if !c.may(Delete, bucket, "") {
			return denied("client %q may not delete bucket %q (it needs delete permission on the whole bucket)", c.Name, bucket)
		}
		if err := a.bucketHasRules(bucket); err != nil {
			return err
		}
	case s3.AccessDelete:
		// DeleteObjects: decided per key once the body is read.
		if req.Delete == nil {
			return s3err.InternalError.WithMessage("s3seal: internal error: DeleteObjects authorized without its body.")
		}
		a.deleteKeys(c, req, d)
	case s3.AccessWrite:
		// PostObject: the key is in the form, which s3seal does not
		// parse, so it cannot be authorized per key.
		return s3err.NotImplemented.WithMessage("Browser-form (POST) uploads are not supported by s3seal: the form names the key in the body, which s3seal cannot authorize before the data reaches the store. Upload with PUT.")
	default:
		return unknownOp(req)
	}
	return nil
}

// bucketHasRules refuses deleting a bucket that has deny rules for some
// of its keys: a deny rule protects keys that deleting the bucket would
// remove with it.
func (a *Authorizer) bucketHasRules(bucket string) error {
	if a.Policy == nil {
		return nil
	}
	for _, r := range a.Policy.Rules() {
		if r.Mode == policy.Deny && r.Bucket != "" && r.MatchesBucket(bucket) && r.DenyScope() != policy.DenyPlaintextWrites {
			return s3err.AccessDenied.WithMessage("%s", r.DenyMessage())
		}
	}
	return nil
}

// listing decides a listing and sets up the filter of keys no client may
// see.
func (a *Authorizer) listing(c *Client, req *s3.Request, d *Decision) error {
	bucket, prefix := req.Bucket, req.Prefix
	if !c.may(List, bucket, prefix) {
		allowed := c.listablePrefixes(bucket)
		if len(allowed) == 0 {
			return denied("client %q may not list bucket %q", c.Name, bucket)
		}
		return denied("client %q may list bucket %q only under the prefixes %q; the listing's prefix must start with one of them", c.Name, bucket, allowed)
	}
	f := &Filter{a: a, bucket: bucket}
	for i := range a.Reserved {
		r := &a.Reserved[i]
		if !r.inBucket(bucket) {
			continue
		}
		if strings.HasPrefix(prefix, r.Prefix) {
			return reservedError(r, bucket)
		}
		if strings.HasPrefix(r.Prefix, prefix) {
			f.reserved = append(f.reserved, r)
		}
	}
	if a.Policy != nil {
		for _, r := range a.Policy.Rules() {
			if r.Mode != policy.Deny || r.DenyScope() != policy.DenyAll || !r.MatchesBucket(bucket) {
				continue
			}
			if rule, uniform := a.Policy.Uniform(bucket, prefix); uniform && rule.Mode == policy.Deny && rule.DenyScope() == policy.DenyAll {
				return s3err.AccessDenied.WithMessage("%s", rule.DenyMessage())
			}
			f.denyRules = true
		}
	}
	if len(f.reserved) > 0 || f.denyRules {
		d.Filter = f
	}
	return nil
}

// object decides an object-level request: the target and any copy source.
func (a *Authorizer) object(c *Client, req *s3.Request, hdr http.Header, d *Decision) error {
	bucket, key := req.Bucket, req.Key
	if err := a.reserved(bucket, key); err != nil {
		return err
	}
	need, ok := actionFor(req.Info.Access)
	if !ok {
		return unknownOp(req)
	}
	switch {
	case need == Write && req.Info.Access == s3.AccessWrite && !c.may(Write, bucket, key) && c.may(Create, bucket, key):
		if err := createOnly(c, req, hdr); err != nil {
			return err
		}
		switch req.Op {
		case s3.OpPutObject, s3.OpCompleteMultipartUpload:
			d.CreateOnly = true
		}
	case !c.may(need, bucket, key):
		return denied("client %q may not %s s3://%s/%s", c.Name, verb(need), bucket, clip(key))
	}
	if req.Op == s3.OpPutObjectAcl && !c.Admin {
		// A body may carry any grants; only a header asking for the
		// private canned ACL is left to non-administrators.
		if !strings.EqualFold(strings.TrimSpace(hdr.Get("X-Amz-Acl")), "private") {
			return denied("client %q may set only the private canned ACL (x-amz-acl: private): only administrators may write ACL documents", c.Name)
		}
	}
	if err := denyRule(d.Rule, req.Op, req.Info.Access, hdr); err != nil {
		return err
	}
	if src := req.CopySource; src != nil {
		if !c.AllowedBucket(src.Bucket) {
			return denied("client %q may not use bucket %q (the copy source)", c.Name, src.Bucket)
		}
		if err := a.reserved(src.Bucket, src.Key); err != nil {
			return err
		}
		if !c.may(Read, src.Bucket, src.Key) {
			return denied("client %q may not read the copy source s3://%s/%s", c.Name, src.Bucket, clip(src.Key))
		}
		d.SourceRule = a.match(src.Bucket, src.Key)
		if err := denyRule(d.SourceRule, req.Op, s3.AccessRead, hdr); err != nil {
			return err
		}
	}
	return nil
}

// createOnly checks a write by a client that may only create objects.
func createOnly(c *Client, req *s3.Request, hdr http.Header) error {
	switch req.Op {
	case s3.OpCopyObject:
		// Stores differ on whether a copy honours If-None-Match (MinIO
		// and versitygw replace the destination regardless), so a copy
		// cannot be held to "new objects only".
		return denied("client %q may create objects but not replace them, and a copy cannot be kept from replacing its destination on every store: upload the object instead", c.Name)
	case s3.OpPostObject:
		return denied("client %q may create objects but not replace them: browser-form uploads cannot be kept from replacing", c.Name)
	}
	switch req.Op {
	case s3.OpPutObject, s3.OpCopyObject, s3.OpCompleteMultipartUpload:
		if hdr.Get("If-Match") != "" {
			return denied("client %q may create objects but not replace them; remove If-Match", c.Name)
		}
		if v := strings.TrimSpace(hdr.Get("If-None-Match")); v != "" && v != "*" {
			return denied("client %q may create objects but not replace them; If-None-Match must be * if sent", c.Name)
		}
	}
	return nil
}

// deleteKeys decides each key of a DeleteObjects request.
func (a *Authorizer) deleteKeys(c *Client, req *s3.Request, d *Decision) {
	for i, o := range req.Delete.Objects {
		var why *s3err.Error
		switch {
		case a.reserved(req.Bucket, o.Key) != nil:
			why, _ = s3err.As(a.reserved(req.Bucket, o.Key))
		case !c.may(Delete, req.Bucket, o.Key):
			why = denied("client %q may not delete s3://%s/%s", c.Name, req.Bucket, clip(o.Key))
		default:
			if err := denyRule(a.match(req.Bucket, o.Key), s3.OpDeleteObject, s3.AccessDelete, nil); err != nil {
				why, _ = s3err.As(err)
			}
		}
		if why != nil {
			if d.Refused == nil {
				d.Refused = map[int]*s3err.Error{}
			}
			d.Refused[i] = why
		}
	}
}

// reserved refuses a key in reserved storage.
func (a *Authorizer) reserved(bucket, key string) error {
	for i := range a.Reserved {
		if r := &a.Reserved[i]; r.covers(bucket, key) {
			return reservedError(r, bucket)
		}
	}
	return nil
}

// denyRule applies a deny rule's scope to one access of a key.
func denyRule(rule *policy.Rule, op s3.Op, access s3.Access, hdr http.Header) error {
	if rule == nil || rule.Mode != policy.Deny {
		return nil
	}
	refuse := false
	switch rule.DenyScope() {
	case policy.DenyAll:
		refuse = true
	case policy.DenyWrites:
		refuse = access.Changes()
	case policy.DenyPlaintextWrites:
		switch op {
		case s3.OpPostObject:
			refuse = true
		case s3.OpPutObject, s3.OpCopyObject, s3.OpCreateMultipartUpload:
			refuse = access == s3.AccessWrite && hdr.Get("X-Amz-Server-Side-Encryption") == "" &&
				hdr.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") == ""
		}
	}
	if refuse {
		return s3err.AccessDenied.WithMessage("%s", rule.DenyMessage())
	}
	return nil
}

// actionFor maps what an object operation does to the permission it
// needs.
func actionFor(a s3.Access) (Action, bool) {
	switch a {
	case s3.AccessRead:
		return Read, true
	case s3.AccessList:
		return List, true
	case s3.AccessWrite, s3.AccessModify:
		return Write, true
	case s3.AccessDelete:
		return Delete, true
	}
	return "", false
}

func verb(a Action) string {
	switch a {
	case Read:
		return "read"
	case List:
		return "list the parts of"
	case Write, Create:
		return "write"
	case Delete:
		return "delete"
	}
	return string(a)
}

func unknownOp(req *s3.Request) error {
	switch req.Info.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		return s3err.MethodNotAllowed.WithMessage("The %s method is not allowed: S3 uses GET, HEAD, PUT, POST and DELETE.", clip(req.Info.Method)).
			WithField("Method", clip(req.Info.Method)).WithField("ResourceType", resourceType(req.Info.Level))
	}
	if req.Info.Level == s3.LevelService {
		return s3err.MethodNotAllowed.WithMessage("The specified method is not allowed against this resource: at the service level s3seal serves only ListBuckets (GET /).").
			WithField("Method", req.Info.Method).WithField("ResourceType", "SERVICE")
	}
	return s3err.NotImplemented.WithMessage("s3seal does not recognise this operation (%s %s) and refuses it: only the S3 operations s3seal knows reach the store.", req.Info.Method, resourceType(req.Info.Level))
}

func resourceType(l s3.Level) string {
	switch l {
	case s3.LevelService:
		return "SERVICE"
	case s3.LevelBucket:
		return "BUCKET"
	}
	return "OBJECT"
}

func denied(format string, args ...any) *s3err.Error {
	return s3err.AccessDenied.WithMessage("Access Denied: "+format+".", args...)
}

func reservedError(r *Reserved, bucket string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("Access Denied: s3seal reserves s3://%s/%s: %s.", bucket, r.Prefix, r.Why)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func matchGlob(pattern, name string) bool {
	if pattern == name {
		return true
	}
	if !strings.ContainsAny(pattern, "*?[") {
		return false
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// Filter says which entries of a listing may be shown.
type Filter struct {
	a         *Authorizer
	bucket    string
	reserved  []*Reserved
	denyRules bool
}

// Key reports whether a listed key (or upload key) may be shown.
func (f *Filter) Key(key string) bool {
	for _, r := range f.reserved {
		if strings.HasPrefix(key, r.Prefix) {
			return false
		}
	}
	if f.denyRules {
		if rule := f.a.match(f.bucket, key); rule.Mode == policy.Deny && rule.DenyScope() == policy.DenyAll {
			return false
		}
	}
	return true
}

// CommonPrefix reports whether a listed common prefix may be shown: not
// when every key under it is hidden.
func (f *Filter) CommonPrefix(p string) bool {
	for _, r := range f.reserved {
		if strings.HasPrefix(p, r.Prefix) {
			return false
		}
	}
	if f.denyRules && f.a.Policy != nil {
		if rule, uniform := f.a.Policy.Uniform(f.bucket, p); uniform && rule.Mode == policy.Deny && rule.DenyScope() == policy.DenyAll {
			return false
		}
	}
	return true
}
