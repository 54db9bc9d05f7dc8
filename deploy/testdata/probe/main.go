// Command probe is the smallest container the image test runs first, to
// tell whether podman can run containers on the machine at all.
package main

import "fmt"

func main() { fmt.Println("probe ok") }
