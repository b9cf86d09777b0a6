# Container start-up, cumulative distribution: startup.dat, one block per mode (ms fraction).
set terminal pngcairo size 900,520 font ",11"
set output dir."/startup.png"
set title "Container start-up: docker run until its first TCP byte reached a server"
set xlabel "milliseconds"
set ylabel "fraction of runs"
set yrange [0:1]
set key bottom right
set grid
plot dir."/startup.dat" index 0 using 1:2 with steps lw 2 title "Docker's default bridge", \
     ""                 index 1 using 1:2 with steps lw 2 title "Docker's user-defined bridge", \
     ""                 index 2 using 1:2 with steps lw 2 title "brfusion, cold (NIC hot-plugged)", \
     ""                 index 3 using 1:2 with steps lw 2 title "brfusion, warm pool"
