//go:build windows

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

const isWindows = true

// detachedProcess starts the server without a console (DETACHED_PROCESS).
const detachedProcess = 0x00000008

// passNotifier makes w's handle inheritable and hands its number to the
// server.
func passNotifier(cmd *exec.Cmd, w *os.File) string {
	h := syscall.Handle(w.Fd())
	syscall.SetHandleInformation(h, syscall.HANDLE_FLAG_INHERIT, syscall.HANDLE_FLAG_INHERIT)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.AdditionalInheritedHandles = append(cmd.SysProcAttr.AdditionalInheritedHandles, h)
	return strconv.FormatUint(uint64(h), 10)
}

func openNotifier(s string) (*notifier, error) {
	h, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: not a handle", notifyEnv, s)
	}
	return &notifier{f: os.NewFile(uintptr(h), "notify")}, nil
}

// detach starts the server in its own process group without a console, so
// closing the console does not stop it.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess
}

func stopProcess(p *os.Process) { p.Kill() }
