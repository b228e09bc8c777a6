"""static/charts.js draws bars and lines from arrays, with text for screen readers."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Server

DRAW = """async () => {
    const { barChart, lineChart, niceMax } = await import('/charts.js');
    const points = [
        { label: '11/1', value: 3 }, { label: '11/2', value: 0 }, { label: '11/3', value: 7 },
    ];
    const bars = barChart(points, { title: 'Bookings', unit: 'x' });
    const line = lineChart(points, { title: 'Rate', max: 100 });
    const empty = barChart([], { title: 'Nothing' });
    const heights = [...bars.querySelectorAll('rect')].map((r) => Number(r.getAttribute('height')));
    return {
        bars: heights,
        barLabel: bars.querySelector('svg').getAttribute('aria-label'),
        tableRows: [...bars.querySelectorAll('tbody tr')].map((tr) => tr.textContent),
        dots: line.querySelectorAll('circle').length,
        polyline: line.querySelector('polyline').getAttribute('points').split(' ').length,
        empty: empty.textContent,
        nice: [niceMax(0), niceMax(7), niceMax(13), niceMax(480)],
    };
}"""


def test_charts_draw_every_point_and_describe_it(page: Any, server: Server) -> None:
    page.goto(server.base_url + "/")
    result = page.evaluate(DRAW)
    low, zero, high = result["bars"]
    assert zero == 0 and 0 < low < high
    assert result["barLabel"] == "Bookings: 11/1: 3, 11/2: 0, 11/3: 7"
    assert result["tableRows"] == ["11/13 x", "11/20 x", "11/37 x"]
    assert result["dots"] == 3 and result["polyline"] == 3
    assert "Nothing" in result["empty"] and "没有数据" in result["empty"]
    assert result["nice"] == [1, 10, 20, 500]
