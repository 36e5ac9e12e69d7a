// placeholder (issue 7)
