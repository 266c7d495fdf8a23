package main

import "strings"

// isCobraUsage recognizes cobra's own argument and flag errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown command", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "unknown shorthand flag", "requires exactly"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
