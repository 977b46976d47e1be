somedir/lib/x/y/util.go
