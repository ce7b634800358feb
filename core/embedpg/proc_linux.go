package embedpg

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr runs a child in its own process group (so a terminal's Ctrl-C
// reaches only the caller, which then stops the server), as the server
// account, with deathSig delivered when the parent dies.
func sysProcAttr(a account, deathSig syscall.Signal) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if a.switchUser {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	return attr
}

// processCwd returns the working directory of a process.
func processCwd(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
}

// isZombie reports whether pid has exited but not been reaped.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// tmpfsMinFree is the free space a tmpfs needs to host ephemeral clusters.
const tmpfsMinFree = 1 << 30

// memoryTempDir returns /dev/shm when it is a tmpfs with room to spare, else
// "". Cloning a test database there is several times faster than on disk.
func memoryTempDir() string {
	const dir, tmpfsMagic = "/dev/shm", 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != tmpfsMagic {
		return ""
	}
	if uint64(st.Bavail)*uint64(st.Bsize) < tmpfsMinFree {
		return ""
	}
	return dir
}
