package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// machine describes where a run happened and what ran.
type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Date   string `json:"date"`
	S3seal string `json:"s3seal"`
	MinIO  string `json:"minio"`
	Nginx  string `json:"nginx"`
	Caddy  string `json:"caddy"`
}

func machineFacts(ctx context.Context, root string, b *bed) machine {
	m := machine{
		CPU:    cpuModel(),
		Cores:  runtime.NumCPU(),
		Kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		Go:     runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Date:   time.Now().UTC().Format(time.RFC3339),
		MinIO:  pin("minio"),
		Caddy:  pin("caddy"),
	}
	if b.s3seal != "" {
		m.S3seal = "built from the working tree at " + gitCommit(ctx, root)
	}
	if bin, err := findBinary("nginx"); err == nil {
		// nginx -v prints "nginx version: nginx/1.22.1" on stderr.
		out, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
		m.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// pin returns the module version install.sh recorded for a test bed
// binary, "" if it is not installed that way.
func pin(name string) string {
	return strings.TrimSpace(readFile(filepath.Join(testbed.BinDir(), "."+name+".pin")))
}

// gitCommit returns the short commit of HEAD, without changing anything
// in the repository.
func gitCommit(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "an unknown commit"
	}
	return "commit " + string(bytes.TrimSpace(out))
}
