# Two bar charts side by side, files/s and MB/s per tool, from one run of a bench script; the bars
# are medians, the whiskers min-max, uvget's bar in colour. Drawn by draw_chart in bench/lib.sh:
#   gnuplot -e "datafile='X.dat'; outfile='X.svg'; ttl='...'; ceiling=N; ceiling_mbs=M" bench/chart.gp
# datafile: one line per tool, "tool files_per_s min max mb_per_s min max" ('#' lines are comments;
# a tool whose every run failed has 0 everywhere and is labelled "failed").
# ceiling, ceiling_mbs: a dashed line for the request-rate ceiling (wrk on one URL); 0: none.
if (!exists("ceiling")) ceiling = 0
if (!exists("ceiling_mbs")) ceiling_mbs = 0

set encoding utf8
set terminal svg size 1100,520 dynamic noenhanced font "sans,12" background rgb "white"
set output outfile

set style fill solid 0.85 border rgb "#444444"
set boxwidth 0.6
set border 3
set xtics nomirror scale 0 rotate by 35 right  # tool names side by side would overlap
set bmargin 7
set ytics nomirror
set grid ytics lc rgb "#dddddd"
set key off
set offsets 0.5, 0.5, 0, 0
colour(tool) = tool eq "uvget" ? 0x2b6cb0 : 0xa0aec0
bar_text(v) = v <= 0 ? "failed" : v < 10 ? sprintf("%.1f", v) : sprintf("%.0f", v)

stats datafile using 4 nooutput
top_files = STATS_max > ceiling ? STATS_max : ceiling
stats datafile using 7 nooutput
top_mbs = STATS_max > ceiling_mbs ? STATS_max : ceiling_mbs

set multiplot layout 1,2 title ttl font ",14"

set ylabel "files/s (median; whiskers: min–max)"
set yrange [0:top_files * 1.15 + 1]
if (ceiling > 0) {
  set arrow 1 from graph 0, first ceiling to graph 1, first ceiling nohead dt 2 lw 1.5 lc rgb "#c53030"
  set label 1 sprintf("wrk -t1, one URL: %.0f req/s", ceiling) at graph 1, first ceiling right \
    offset 0,0.7 textcolor rgb "#c53030"
}
plot datafile using 0:2:(colour(strcol(1))):xtic(1) with boxes lc rgb variable, \
     '' using 0:3:(0):($4 - $3) with vectors heads size screen 0.005,90 lc rgb "#222222", \
     '' using 0:4:(bar_text($2)) with labels offset 0,0.8 font ",10"

unset arrow 1
unset label 1
set ylabel "MB/s (median; whiskers: min–max)"
set yrange [0:top_mbs * 1.15 + 1]
if (ceiling_mbs > 0) {
  set arrow 1 from graph 0, first ceiling_mbs to graph 1, first ceiling_mbs nohead dt 2 lw 1.5 lc rgb "#c53030"
  set label 1 sprintf("wrk -t1, one URL: %.0f MB/s", ceiling_mbs) at graph 1, first ceiling_mbs right \
    offset 0,0.7 textcolor rgb "#c53030"
}
plot datafile using 0:5:(colour(strcol(1))):xtic(1) with boxes lc rgb variable, \
     '' using 0:6:(0):($7 - $6) with vectors heads size screen 0.005,90 lc rgb "#222222", \
     '' using 0:7:(bar_text($5)) with labels offset 0,0.8 font ",10"

unset multiplot
