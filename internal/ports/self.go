package ports

import "os"

func osGetpid() int { return os.Getpid() }

var osExecutable = os.Executable

// selfUID is this process's uid, -1 where the OS has none.
func selfUID() int { return os.Getuid() }
