somedir/app.go
