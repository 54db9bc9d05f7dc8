package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse decodes YAML into c. Unknown keys and values of the wrong type are
// errors (*FieldError, joined) that name the YAML path, its line and the
// environment variable for the same setting, for example
//
//	config: line 2: lisen: unknown key; did you mean listen (S3SEAL_LISTEN)?
//	config: line 5: limits.max_header_bytes: want a whole number, got "lots"
//
// so that a typo is neither silently ignored nor reported in terms of Go
// types.
func Parse(b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file, or only comments
	}
	w := &walker{}
	w.walk(doc.Content[0], reflect.TypeOf(c).Elem(), "")
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	// The walk accepted every key and value; the strict decoder stays as a
	// second line of defence.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// maxDepth bounds the walk over nested (or aliased) nodes.
const maxDepth = 32

// walker checks a YAML node tree against the Config type.
type walker struct {
	errs  []error
	nodes int
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

func (w *walker) fail(n *yaml.Node, path, msg string) {
	if len(w.errs) >= 20 {
		return
	}
	w.errs = append(w.errs, &FieldError{Field: path, Env: envForPath(path), Line: n.Line, Msg: msg})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	w.walkDepth(n, t, path, 0)
}

func (w *walker) walkDepth(n *yaml.Node, t reflect.Type, path string, depth int) {
	w.nodes++
	if depth > maxDepth || w.nodes > 100000 {
		w.fail(n, path, "nested too deeply")
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
		depth++
		if depth > maxDepth {
			w.fail(n, path, "nested too deeply")
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the zero value: the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	custom := pt.Implements(textUnmarshaler) || pt.Implements(yamlUnmarshaler)
	if custom && !(t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode) {
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a single value, got "+kindName(n))
			return
		}
		v := reflect.New(t).Interface()
		var err error
		if u, ok := v.(yaml.Unmarshaler); ok {
			err = u.UnmarshalYAML(n)
		} else {
			err = v.(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value))
		}
		if err != nil {
			w.fail(n, path, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want settings (key: value lines), got "+kindName(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.fail(k, path, "a key must be a plain name")
				continue
			}
			sub := joinPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				w.fail(k, sub, unknownKey(k.Value, path, fields))
				continue
			}
			w.walkDepth(v, f.Type, sub, depth+1)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "want a list (- item lines, or [a, b]), got "+kindName(n))
			return
		}
		for i, v := range n.Content {
			w.walkDepth(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "want key: value pairs, got "+kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				w.fail(k, path, "a key must be a plain name")
				continue
			}
			w.walkDepth(n.Content[i+1], t.Elem(), joinPath(path, k.Value), depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a single value, got "+kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want true or false, got "+kindName(n))
			return
		}
		var b bool
		if n.Decode(&b) != nil {
			w.fail(n, path, fmt.Sprintf("want true or false, got %q", n.Value))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "want a whole number, got "+kindName(n))
			return
		}
		v := reflect.New(t).Interface()
		if n.Decode(v) != nil {
			w.fail(n, path, fmt.Sprintf("want a whole number, got %q", n.Value))
		}
	default:
		v := reflect.New(t).Interface()
		if err := n.Decode(v); err != nil {
			w.fail(n, path, fmt.Sprintf("cannot read %q here", n.Value))
		}
	}
}

// kindName describes a node for people.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "key: value settings"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML names of a struct's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// unknownKey says that key is not a setting under path, suggesting the
// closest one.
func unknownKey(key, path string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestDist || (d == bestDist && best == "" && d <= 2) {
			best, bestDist = n, d
		}
	}
	if best == "" {
		for _, n := range names {
			if strings.HasPrefix(n, key) || strings.HasPrefix(key, n) {
				best = n
				break
			}
		}
	}
	if best != "" {
		full := joinPath(path, best)
		if env := envForPath(full); env != "" {
			return fmt.Sprintf("unknown key; did you mean %s (%s)?", full, env)
		}
		return fmt.Sprintf("unknown key; did you mean %s?", full)
	}
	where := "at the top level"
	if path != "" {
		where = "under " + path
	}
	return fmt.Sprintf("unknown key; the keys %s are %s", where, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envForPath returns the S3SEAL_* (or AWS_*) variable that sets the
// setting at a YAML path, or "". Entries of a file's clients list have
// none: the S3SEAL_CLIENT_* variables add a client of their own.
func envForPath(path string) string {
	for _, e := range envTable {
		if e.field == path && !strings.HasPrefix(e.field, "clients[") {
			return e.name
		}
	}
	// Indexed list entries share their list's variable.
	if i := strings.LastIndexByte(path, '['); i > 0 && strings.HasSuffix(path, "]") {
		return envForPath(path[:i])
	}
	return awsEnv[path]
}

// awsEnv are the AWS SDK variables s3seal reads for upstream settings.
var awsEnv = map[string]string{
	"upstream.endpoint":  "AWS_ENDPOINT_URL_S3",
	"upstream.region":    "AWS_REGION",
	"upstream.ca_bundle": "AWS_CA_BUNDLE",
}

// UnmarshalYAML reads tls.storage either in its short form, "file" or
// "s3:BUCKET[/PREFIX]" (as S3SEAL_CERT_STORAGE takes it), or as settings
// (type, bucket, prefix).
func (s *CertStorage) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := ParseCertStorage(n.Value)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	type plain CertStorage
	return n.Decode((*plain)(s))
}

// ParseCertStorage reads the short form of tls.storage: "file" or
// "s3:BUCKET[/PREFIX]".
func ParseCertStorage(v string) (CertStorage, error) {
	switch {
	case v == "file":
		return CertStorage{Type: "file"}, nil
	case strings.HasPrefix(v, "s3:"):
		b, p, _ := strings.Cut(strings.TrimPrefix(v, "s3:"), "/")
		if b == "" {
			return CertStorage{}, fmt.Errorf(`want "s3:BUCKET[/PREFIX]" with a bucket name, got %q`, v)
		}
		return CertStorage{Type: "s3", Bucket: b, Prefix: p}, nil
	}
	return CertStorage{}, fmt.Errorf(`want "file" or "s3:BUCKET[/PREFIX]", got %q`, v)
}
