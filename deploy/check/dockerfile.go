package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkDockerfiles lints each Dockerfile with BuildKit and s3seal's policy.
func checkDockerfiles(files []string, out io.Writer) ([]finding, error) {
	var all []finding
	for _, f := range files {
		dt, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		fs := lintDockerfile(f, dt)
		fs = append(fs, dockerfilePolicy(f, dt, true)...)
		if len(fs) == 0 {
			fmt.Fprintf(out, "ok   %s\n", f)
		}
		all = append(all, fs...)
	}
	return all, nil
}

// lintDockerfile runs BuildKit's Dockerfile checks, the ones "docker build
// --check" runs (a "# check=" directive in the file configures them, as it
// does for docker build).
func lintDockerfile(file string, dt []byte) []finding {
	sm := llb.NewSourceMap(nil, file, "Dockerfile", dt)
	sm.Definition = &llb.Definition{}
	linux := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		SourceMap:      sm,
		MetaResolver:   offlineImages{},
		TargetPlatform: &linux,
	})
	if err != nil {
		return []finding{{file, "lint: " + err.Error()}}
	}
	var out []finding
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 && w.Location.Ranges[0].Start != nil {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		out = append(out, finding{fmt.Sprintf("%s:%d", file, line), fmt.Sprintf("%s: %s", w.RuleName, w.Detail)})
	}
	if res.Error != nil {
		out = append(out, finding{file, "BuildKit refuses it: " + res.Error.Message})
	}
	return out
}

// offlineImages stands in for a registry: every base image resolves to an
// empty linux/amd64 configuration with one layer, so that linting needs no
// network. Rules that read a base image's environment see none.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	img := ocispecs.Image{
		Platform: p,
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(ref)}},
	}
	dt, err := json.Marshal(img)
	return ref, "", dt, err
}

// dockerfilePolicy checks what s3seal's image must be:
//
//   - built in more than one stage, the last FROM scratch or a distroless
//     static base (no shell, no package manager, no libc);
//   - every "go build" with CGO_ENABLED=0, so the binary is static;
//   - no ADD of a URL or git repository (unpinned remote content);
//   - the final stage runs as a USER other than root;
//   - it declares a HEALTHCHECK command;
//   - S3SEAL_DATA_DIR is a declared VOLUME, so that the root filesystem
//     may be read-only.
//
// A release form (multiStage false) copies a prebuilt binary from the build
// context into its one stage instead.
func dockerfilePolicy(file string, dt []byte, multiStage bool) []finding {
	var out []finding
	add := func(line int, format string, a ...any) {
		f := file
		if line > 0 {
			f = fmt.Sprintf("%s:%d", file, line)
		}
		out = append(out, finding{f, fmt.Sprintf(format, a...)})
	}
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		add(0, "parse: %v", err)
		return out
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		add(0, "parse: %v", err)
		return out
	}
	if multiStage && len(stages) < 2 {
		add(0, "not a multi-stage build: build in one stage, copy the binary into a minimal one")
	}
	if len(stages) == 0 {
		return out
	}
	for _, st := range stages {
		cgoOff := false
		for _, cmd := range st.Commands {
			line := cmdLine(cmd)
			switch c := cmd.(type) {
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if kv.Key == "CGO_ENABLED" {
						cgoOff = kv.Value == "0"
					}
				}
			case *instructions.AddCommand:
				for _, src := range c.SourcePaths {
					if isRemote(src) {
						add(line, "ADD %s fetches remote content; download it in a build step with a checksum instead", src)
					}
				}
			case *instructions.RunCommand:
				run := strings.Join(c.CmdLine, " ")
				if strings.Contains(run, "go build") && !cgoOff && !strings.Contains(run, "CGO_ENABLED=0") {
					add(line, "go build without CGO_ENABLED=0: the binary would not be static")
				}
			}
		}
	}
	final := stages[len(stages)-1]
	base := final.BaseName
	if base != "scratch" && !strings.HasPrefix(path.Base(strings.SplitN(base, ":", 2)[0]), "static") {
		add(lineOf(final.Location), "final stage FROM %s: use scratch or a distroless static image", base)
	}
	user := ""
	var health *instructions.HealthCheckCommand
	var volumes []string
	dataDir := ""
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.VolumeCommand:
			volumes = append(volumes, c.Volumes...)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				if kv.Key == "S3SEAL_DATA_DIR" {
					dataDir = kv.Value
				}
			}
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		add(lineOf(final.Location), "final stage runs as root: add USER with an unprivileged user (65532)")
	}
	if health == nil || health.Health == nil || len(health.Health.Test) == 0 || health.Health.Test[0] == "NONE" {
		add(lineOf(final.Location), "final stage has no HEALTHCHECK command")
	}
	if dataDir == "" {
		add(lineOf(final.Location), "final stage sets no S3SEAL_DATA_DIR")
	} else if !slices.Contains(volumes, dataDir) {
		add(lineOf(final.Location), "S3SEAL_DATA_DIR %s is not a VOLUME: s3seal would write to the root filesystem", dataDir)
	}
	return out
}

func isRemote(src string) bool {
	s := strings.ToLower(src)
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://")
}

func cmdLine(cmd instructions.Command) int {
	if l, ok := cmd.(interface{ Location() []parser.Range }); ok {
		return lineOf(l.Location())
	}
	return 0
}

func lineOf(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

// checkSameImage lints a multi-stage Dockerfile (source) and its release
// form (release, one stage copying a prebuilt binary from the build
// context), and checks that both build the same image: the same base and,
// instruction by instruction, the same final stage, where a COPY may take
// its files from another stage in one and from the context in the other
// (compared by destination, owner, mode and source file names).
func checkSameImage(source, release string, out io.Writer) ([]finding, error) {
	sdt, err := os.ReadFile(source)
	if err != nil {
		return nil, err
	}
	rdt, err := os.ReadFile(release)
	if err != nil {
		return nil, err
	}
	all := append(lintDockerfile(source, sdt), dockerfilePolicy(source, sdt, true)...)
	all = append(all, lintDockerfile(release, rdt)...)
	all = append(all, dockerfilePolicy(release, rdt, false)...)
	sf, err := finalStage(sdt)
	if err != nil {
		return append(all, finding{source, "parse: " + err.Error()}), nil
	}
	rf, err := finalStage(rdt)
	if err != nil {
		return append(all, finding{release, "parse: " + err.Error()}), nil
	}
	if len(rf.stages) != 1 {
		all = append(all, finding{release, fmt.Sprintf("has %d stages; a release form copies a prebuilt binary into one", len(rf.stages))})
	}
	for _, c := range rf.last.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			all = append(all, finding{fmt.Sprintf("%s:%d", release, cmdLine(c)), "COPY --from: a release form takes its files from the build context"})
		}
		if _, ok := c.(*instructions.RunCommand); ok {
			all = append(all, finding{fmt.Sprintf("%s:%d", release, cmdLine(c)), "RUN: a release form only copies files"})
		}
	}
	if sf.last.BaseName != rf.last.BaseName {
		all = append(all, finding{release, fmt.Sprintf("final stage FROM %s, but %s's is FROM %s", rf.last.BaseName, source, sf.last.BaseName)})
	}
	a, b := normalStage(sf.last), normalStage(rf.last)
	for i := 0; i < max(len(a), len(b)); i++ {
		switch {
		case i >= len(a):
			all = append(all, finding{fmt.Sprintf("%s:%d", release, b[i].line), fmt.Sprintf("%s is not in %s's final stage", b[i].text, source)})
		case i >= len(b):
			all = append(all, finding{fmt.Sprintf("%s:%d", source, a[i].line), fmt.Sprintf("%s is not in %s", a[i].text, release)})
		case a[i].text != b[i].text:
			all = append(all, finding{fmt.Sprintf("%s:%d", release, b[i].line), fmt.Sprintf("%s, but %s:%d has %s", b[i].text, source, a[i].line, a[i].text)})
		default:
			continue
		}
		break // the first difference is enough
	}
	if len(all) == 0 {
		fmt.Fprintf(out, "ok   %s and %s build the same image (%d instructions in the final stage)\n", source, release, len(a))
	}
	return all, nil
}

type parsedStages struct {
	stages []instructions.Stage
	last   instructions.Stage
}

func finalStage(dt []byte) (parsedStages, error) {
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return parsedStages{}, err
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return parsedStages{}, err
	}
	if len(stages) == 0 {
		return parsedStages{}, fmt.Errorf("no FROM")
	}
	return parsedStages{stages, stages[len(stages)-1]}, nil
}

type normalCmd struct {
	line int
	text string
}

// normalStage describes a stage's instructions independently of where
// COPY takes its files from.
func normalStage(st instructions.Stage) []normalCmd {
	var out []normalCmd
	for _, cmd := range st.Commands {
		var text string
		switch c := cmd.(type) {
		case *instructions.CopyCommand:
			names := make([]string, len(c.SourcePaths))
			for i, p := range c.SourcePaths {
				names[i] = path.Base(p)
			}
			text = fmt.Sprintf("COPY --chown=%s --chmod=%s %s %s", c.Chown, c.Chmod, strings.Join(names, " "), c.DestPath)
		case *instructions.EnvCommand:
			text = "ENV " + keyValues(c.Env)
		case *instructions.LabelCommand:
			text = "LABEL " + keyValues(c.Labels)
		case *instructions.UserCommand:
			text = "USER " + c.User
		case *instructions.VolumeCommand:
			text = "VOLUME " + strings.Join(c.Volumes, " ")
		case *instructions.ExposeCommand:
			text = "EXPOSE " + strings.Join(c.Ports, " ")
		case *instructions.HealthCheckCommand:
			text = fmt.Sprintf("HEALTHCHECK %+v", *c.Health)
		case *instructions.EntrypointCommand:
			text = fmt.Sprintf("ENTRYPOINT %q shell=%v", c.CmdLine, c.PrependShell)
		case *instructions.CmdCommand:
			text = fmt.Sprintf("CMD %q shell=%v", c.CmdLine, c.PrependShell)
		default:
			text = strings.ToUpper(cmd.Name()) + " " + fmt.Sprint(cmd)
		}
		out = append(out, normalCmd{cmdLine(cmd), text})
	}
	return out
}

func keyValues(kvs instructions.KeyValuePairs) string {
	s := make([]string, len(kvs))
	for i, kv := range kvs {
		s[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(s, " ")
}
