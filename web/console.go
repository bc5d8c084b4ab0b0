// Package web embeds the browser console's built assets (dist/, produced
// by `make web` from the TypeScript in src/) so the switchyard binary can
// serve them without any file on disk.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"sync"
)

//go:embed dist
var dist embed.FS

// Assets is the console's file tree: index.html and console/*.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is embedded above, so this cannot happen
	}
	return sub
}

// contentSecurityPolicy lets the console run only its own script and
// style, from this origin, call any API (?api= and the API field name
// one; connect-src does not admit data: or blob: URLs), and be framed by
// no page.
const contentSecurityPolicy = "default-src 'self'; connect-src *; img-src 'self'; style-src 'self'; script-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// withHeaders serves h with the headers every console response carries:
// its policy, no framing (for browsers without frame-ancestors), no MIME
// sniffing, no referrer sent to the API it calls, and no-cache: the page
// and its assets change with the binary, which names no version in their
// paths, so a browser must not reuse them without asking.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := w.Header()
		header.Set("Content-Security-Policy", contentSecurityPolicy)
		header.Set("X-Frame-Options", "DENY")
		header.Set("X-Content-Type-Options", "nosniff")
		header.Set("Referrer-Policy", "no-referrer")
		header.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// etags maps each file of Assets() to an ETag made of its content's
// SHA-256. Embedded files have no modification time, so without one a
// browser told no-cache (withHeaders) has nothing to revalidate with and
// downloads every file again on each visit; a file a new binary changes
// gets a new ETag, so a browser never keeps the old one.
var etags = sync.OnceValue(func() map[string]string {
	assets := Assets()
	tags := make(map[string]string)
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		tags[name] = `"` + hex.EncodeToString(sum[:16]) + `"`
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is readable, so this cannot happen
	}
	return tags
})

// setETag sets the ETag of the file of Assets() named name, if there is
// one; http.ServeContent then answers If-None-Match with 304.
func setETag(w http.ResponseWriter, name string) {
	if tag, ok := etags()[name]; ok {
		w.Header().Set("ETag", tag)
	}
}

// IndexHandler serves the console's page.
func IndexHandler() http.Handler {
	assets := Assets()
	return withHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setETag(w, "index.html")
		http.ServeFileFS(w, r, assets, "index.html")
	}))
}

// AssetHandler serves the console's scripts and styles under /console/:
// its files only, not a listing of the folder (http.FileServerFS's
// answer to a path ending in "/").
func AssetHandler() http.Handler {
	files := http.FileServerFS(Assets())
	return withHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		setETag(w, strings.TrimPrefix(r.URL.Path, "/"))
		files.ServeHTTP(w, r)
	}))
}
