// Package usermsg turns an error into the message a person reads, for the
// command line and the menu alike. The packages below the faces prefix
// their sentinel errors with their own name (Go's convention); a user is
// told what is wrong, not where in the code.
package usermsg

import (
	"errors"
	"io/fs"
	"regexp"
	"strings"
)

// pkgPrefix matches a Go package name used as a message prefix, at the
// start or after another message's ": ".
var pkgPrefix = regexp.MustCompile(`(^|: )(restorecore|backupcore|image|volume|browse|locate|catalog|disk|mount|sysdev|devguard|units|ui|convert|check|anyimage|seekz|vdisk): `)

// wrappers are prefixes other packages add that repeat what follows.
var wrappers = strings.NewReplacer("open source: ", "source ", "open target: ", "target ", "open image: ", "")

// Text is the message a person reads for err.
func Text(err error) string {
	s := err.Error()
	// "open x.img: no such file" inside a longer message says "open"
	// twice or says nothing the path does not; keep the path.
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		switch pe.Op {
		case "open", "stat", "lstat", "openat":
			s = strings.Replace(s, pe.Error(), pe.Path+": "+pe.Err.Error(), 1)
		}
	}
	s = wrappers.Replace(s)
	for {
		t := pkgPrefix.ReplaceAllString(s, "$1")
		if t == s {
			break
		}
		s = t
	}
	return s
}
