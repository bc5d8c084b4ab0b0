// Package web embeds the browser console's built assets (dist/, produced
// by `make web` from the TypeScript in src/) so the switchyard binary can
// serve them without any file on disk.
package web

import (
	"embed"
	"io/fs"
	"net/http"
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

// IndexHandler serves the console's page.
func IndexHandler() http.Handler {
	assets := Assets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, assets, "index.html")
	})
}

// AssetHandler serves the console's scripts and styles under /console/.
func AssetHandler() http.Handler {
	return http.FileServerFS(Assets())
}
