package browse

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Host file-name rules for extraction. NTFS (POSIX namespace) allows names
// that Windows cannot create, and a 255-character NTFS name can exceed the
// 255 bytes Linux allows; such names are changed and the change reported.

// maxNameBytes is NAME_MAX on Linux and the BSDs; Windows counts 255 UTF-16
// code units instead.
const maxNameBytes = 255

// SafeName returns a name that can be created on the host (windows: under
// Windows rules) for one path component, and whether it differs from name.
func SafeName(name string, windows bool) (string, bool) {
	out := name
	if !utf8.ValidString(out) {
		out = strings.ToValidUTF8(out, "_")
	}
	out = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == 0:
			return '_'
		case windows && (r < 0x20 || strings.ContainsRune(`<>:"\|?*`, r)):
			return '_'
		}
		return r
	}, out)
	if out == "" || out == "." || out == ".." {
		out = strings.Repeat("_", max(len(out), 1))
	}
	if windows {
		if t := strings.TrimRight(out, ". "); t != out {
			out = t + strings.Repeat("_", len(out)-len(t))
		}
		if reservedWindows(out) {
			out = "_" + out
		}
	}
	if tooLong(out, windows) {
		sum := sha256.Sum256([]byte(name))
		tag := "~" + hex.EncodeToString(sum[:4])
		ext := ""
		if i := strings.LastIndexByte(out, '.'); i > 0 && len(out)-i <= 16 {
			ext = out[i:]
		}
		base := strings.TrimSuffix(out, ext)
		for tooLong(base+tag+ext, windows) {
			_, n := utf8.DecodeLastRuneInString(base)
			base = base[:len(base)-n]
		}
		out = base + tag + ext
	}
	return out, out != name
}

func tooLong(s string, windows bool) bool {
	if windows {
		return len(utf16.Encode([]rune(s))) > 255
	}
	return len(s) > maxNameBytes
}

// reservedWindows reports DOS device names (CON, NUL, COM1, ... with any
// extension), which Windows does not let a file have.
func reservedWindows(s string) bool {
	base, _, _ := strings.Cut(s, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	r := []rune(base)
	return len(r) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) &&
		strings.ContainsRune("123456789¹²³", r[3])
}
