//go:build windows

package ports

// dialControl binds sending sockets exclusively too (sock_windows.go).
var dialControl = exclusive
