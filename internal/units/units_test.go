package units

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "650M": 650 << 20, "4G": 4 << 30, "1.5GiB": 3 << 29, "2k": 2048, "1T": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1M", "0", "1Q"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	if Human(1536<<20) != "1.5 GiB" || Human(10) != "10 B" || Human(-1) != "?" {
		t.Error("Human")
	}
}
