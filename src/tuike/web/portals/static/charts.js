// Draw every .chart element from its data-series: {x: [...], series: [{name, data, axis}]}.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".chart").forEach(function (el) {
    var spec = JSON.parse(el.dataset.series);
    var chart = echarts.init(el);
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 48, top: 36, bottom: 28 },
      xAxis: { type: "category", data: spec.x },
      yAxis: [{ type: "value" }, { type: "value", splitLine: { show: false } }],
      series: spec.series.map(function (s) {
        return { name: s.name, type: s.type || "line", data: s.data, yAxisIndex: s.axis || 0, smooth: true };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  });
});
