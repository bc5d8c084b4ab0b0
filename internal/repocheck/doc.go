// Package repocheck holds tests of the repository itself rather than of
// any Go package: no build output is committed, every command's build
// output is ignored, and every repository path the Markdown documents name
// exists. They read the tree through git, so they see what a fresh clone
// sees; `make test` runs them (in `make lint` and `make unit`).
package repocheck
