// Command check validates s3seal's deploy files offline.
//
//	check k8s DIR...                 Kubernetes manifests: every *.yaml file in each DIR
//	check k8s-patch PATCH DIR...     the manifests of the DIRs, one Deployment patched (kubectl patch)
//	check dockerfile FILE...         Dockerfiles
//	check same-image SOURCE RELEASE  a multi-stage Dockerfile and its release form build the same image
//
// It prints one line per finding, "FILE: message", and exits 1 if there is
// any, 2 on a usage error, 0 when everything passed.
//
// # Kubernetes manifests
//
// Each file must hold exactly one resource. It is decoded strictly (unknown
// and duplicate fields are errors) into the typed objects of the Kubernetes
// API, defaulted and converted as the API server does, and then put through
// the API server's own create path (rest.BeforeCreate with the resource's
// registry strategy: the handwritten and declarative validation, and the
// warnings an apply would print, which count as findings). The files of one
// directory must also fit together (see crossCheck), and workloads must
// follow s3seal's hardening policy (see policyCheck).
//
// # Dockerfiles
//
// A Dockerfile is linted with BuildKit's rules, exactly as "docker build
// --check" runs them (base images are not pulled: their configuration is
// taken as empty), and must follow s3seal's image policy (see
// dockerfilePolicy).
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  check k8s DIR...                 validate the Kubernetes manifests (*.yaml) in each DIR
  check k8s-patch PATCH DIR...     validate the manifests of the DIRs, as one directory, with
                                   the Deployment PATCH names patched by it (kubectl patch)
  check dockerfile FILE...         lint Dockerfiles
  check same-image SOURCE RELEASE  lint both, and check that their final stages are the same
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var findings []finding
	var err error
	switch args[0] {
	case "k8s":
		findings, err = checkK8sDirs(args[1:], stdout)
	case "k8s-patch":
		if len(args) < 3 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		findings, err = checkPatched(args[1], args[2:], stdout)
	case "dockerfile":
		findings, err = checkDockerfiles(args[1:], stdout)
	case "same-image":
		if len(args) != 3 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		findings, err = checkSameImage(args[1], args[2], stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return 2
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(stdout, "%d finding(s)\n", len(findings))
		return 1
	}
	return 0
}

// finding is one problem in one file.
type finding struct {
	file string
	msg  string
}

func (f finding) String() string { return f.file + ": " + f.msg }
