package config

import (
	"context"
	"log/slog"
	"strconv"
)

// Note is one thing loading a config found that is not an error: an unused
// ZLMediaKit key (debug), how many there were (info), a key or section
// nobody knows (warn). Level says how loudly the CLI logs it.
type Note struct {
	Level slog.Level
	File  string
	Line  int // 0 when the note is about the whole file
	Text  string
}

// String is "file:line: text", the form of a compiler message, so editors
// can jump to the line.
func (n Note) String() string {
	where := n.File
	if where == "" {
		where = "config"
	}
	if n.Line > 0 {
		where += ":" + strconv.Itoa(n.Line)
	}
	return where + ": " + n.Text
}

func (c *Config) note(level slog.Level, file string, line int, text string) {
	n := Note{Level: level, File: file, Line: line, Text: text}
	c.Notes = append(c.Notes, n)
	if level >= slog.LevelWarn {
		c.Warnings = append(c.Warnings, n.String())
	}
}

// LogNotes logs every note at its level, each line starting "config: ".
func (c *Config) LogNotes(log *slog.Logger) {
	for _, n := range c.Notes {
		log.Log(context.Background(), n.Level, "config: "+n.String())
	}
}
