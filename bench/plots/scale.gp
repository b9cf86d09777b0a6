# Scale: scale.dat, one block per kind of VM, headed by its name (endpoints attach_p50 attach_p90 shim_mib plugin_mib vswitchd_mib
# brfusion_cpu_ms ovs_cpu_ms warm_attach_p50_ms at_once_ms_per_attach; NaN where not measured).
set terminal pngcairo size 1500,480 font ",11"
set output dir."/scale.png"
set multiplot layout 1,3 title "Endpoints on one host"
set logscale x 10
set xlabel "endpoints"
set grid
set key top left
set yrange [0:*]
blocks = system("grep -c '^$' ".dir."/scale.dat") / 2
set title "attach (CreateEndpoint + Join)"
set ylabel "ms"
plot for [i=0:blocks] dir."/scale.dat" index i using 1:2 with linespoints lw 2 pt 7 title columnhead(1), \
     for [i=0:blocks] dir."/scale.dat" index i using 1:9 with linespoints lw 2 pt 5 title "warm pool, ".columnhead(1), \
     for [i=0:blocks] dir."/scale.dat" index i using 1:10 with linespoints lw 2 pt 9 title "8 at once, per attach, ".columnhead(1)
set title "CPU per attach"
set ylabel "ms"
plot for [i=0:blocks] dir."/scale.dat" index i using 1:7 with linespoints lw 2 pt 7 title "brfusion, ".columnhead(1), \
     for [i=0:blocks] dir."/scale.dat" index i using 1:8 with linespoints lw 2 pt 5 title "OVS, ".columnhead(1)
set title "resident memory"
set ylabel "MiB"
plot for [i=0:blocks] dir."/scale.dat" index i using 1:4 with linespoints lw 2 pt 7 title "shim, ".columnhead(1), \
     for [i=0:blocks] dir."/scale.dat" index i using 1:5 with linespoints lw 2 pt 5 title "plugin, ".columnhead(1)
unset multiplot
