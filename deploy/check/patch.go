package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"
)

// checkPatched validates what "kubectl patch --type strategic" makes of
// the manifests in dirs with patch applied: the patch names a Deployment
// of dirs (kind and metadata.name); it is merged into it with the
// Deployment's strategic-merge rules (lists of containers and volumes
// merge by name), and the result, with the other files of dirs, goes
// through the same checks as "check k8s" (one directory).
func checkPatched(patch string, dirs []string, out io.Writer) ([]finding, error) {
	pb, err := os.ReadFile(patch)
	if err != nil {
		return nil, err
	}
	var target kindAndName
	if err := yaml.Unmarshal(pb, &target); err != nil {
		return []finding{{patch, "not YAML: " + err.Error()}}, nil
	}
	if target.Kind != "Deployment" || target.Metadata.Name == "" {
		return []finding{{patch, "a patch must name the Deployment it applies to (kind: Deployment, metadata.name)"}}, nil
	}
	pj, err := yaml.YAMLToJSON(pb)
	if err != nil {
		return []finding{{patch, "not YAML: " + err.Error()}}, nil
	}
	tmp, err := os.MkdirTemp("", "s3seal-check-patch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	patched := ""
	for _, dir := range dirs {
		files, err := manifestFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var meta kindAndName
			if yaml.Unmarshal(b, &meta) == nil && meta.Kind == target.Kind && meta.Metadata.Name == target.Metadata.Name {
				oj, err := yaml.YAMLToJSON(b)
				if err != nil {
					return []finding{{f, "not YAML: " + err.Error()}}, nil
				}
				mj, err := strategicpatch.StrategicMergePatch(oj, pj, appsv1.Deployment{})
				if err != nil {
					return []finding{{patch, fmt.Sprintf("cannot patch %s: %v", f, err)}}, nil
				}
				if b, err = yaml.JSONToYAML(mj); err != nil {
					return nil, err
				}
				patched = f
			}
			name := filepath.Join(tmp, strings.ReplaceAll(filepath.Clean(f), string(filepath.Separator), "__"))
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return nil, err
			}
		}
	}
	if patched == "" {
		return []finding{{patch, fmt.Sprintf("no Deployment %q in %s to patch", target.Metadata.Name, strings.Join(dirs, ", "))}}, nil
	}
	fmt.Fprintf(out, "patched %s with %s\n", patched, patch)
	// Output and findings name the original files.
	original := func(s string) string {
		return strings.ReplaceAll(strings.TrimPrefix(s, tmp+string(filepath.Separator)), "__", string(filepath.Separator))
	}
	var buf strings.Builder
	fs, err := checkK8sDirs([]string{tmp}, &buf)
	fmt.Fprint(out, strings.ReplaceAll(strings.ReplaceAll(buf.String(), tmp+string(filepath.Separator), ""), "__", string(filepath.Separator)))
	for i := range fs {
		fs[i].file = original(fs[i].file)
		if fs[i].file == filepath.Clean(patched) {
			fs[i].file = patched + " (patched with " + patch + ")"
		}
	}
	return fs, err
}

// kindAndName is what identifies a manifest to a patch.
type kindAndName struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
}
