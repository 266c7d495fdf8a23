package restorecore

import (
	"fmt"
	"os"
)

// targetID names the target beyond its path; on Windows the path and
// whether it is a file or a device.
func targetID(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		// Device paths (\\.\X:) may not stat; the path alone names them.
		return "device", nil
	}
	if fi.Mode().IsRegular() {
		return "file", nil
	}
	return fmt.Sprintf("device %s", fi.Mode().Type()), nil
}

// syncDir does nothing: Windows makes a rename durable with the file.
func syncDir(string) {}
