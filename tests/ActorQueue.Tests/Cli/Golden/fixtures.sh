# The files the golden cases read, made afresh in each case's empty directory (for GNU parallel and actorqueue alike).
printf '1\n2\n' > f1
printf 'x\ny\n' > f2
printf 'x\n\n#c\ny\n' > blank-and-hash.txt
printf 'echo hi\necho a/b\n' > commands.txt
printf '' > empty.txt
