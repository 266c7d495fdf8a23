//go:build !windows

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

const isWindows = false

// passNotifier hands w to the server as descriptor 3.
func passNotifier(cmd *exec.Cmd, w *os.File) string {
	cmd.ExtraFiles = []*os.File{w}
	return "3"
}

func openNotifier(s string) (*notifier, error) {
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", notifyEnv, s)
	}
	// fusermount and other helpers must not hold the parent's pipe open.
	syscall.CloseOnExec(fd)
	return &notifier{f: os.NewFile(uintptr(fd), "notify")}, nil
}

// detach puts the server in its own session: the terminal's Ctrl-C and
// hang-up do not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

func stopProcess(p *os.Process) { p.Signal(syscall.SIGTERM) }
