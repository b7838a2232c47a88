// Package web holds the example front end: a page of static HTML and
// JavaScript that uses a cookie session (register, log in, list projects,
// log out), served at /dev/example/ in development (DEV_ROUTES). Copy it as the
// start of a browser app; it needs no build step.
package web

import (
	"embed"
	"io/fs"
)

//go:embed example
var files embed.FS

// Example is the example front end's files (index.html at the root).
func Example() fs.FS {
	sub, err := fs.Sub(files, "example")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}
