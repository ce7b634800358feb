module example.com/hello-app

go 1.22
