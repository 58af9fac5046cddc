"""Learning curves readable for a run of one epoch: points marked, loss on a log axis."""

from ohmflow.host import report


def history(epochs: int) -> list[dict]:
    return [{"epoch": e + 1, "analog_train_loss": 2.0 / (e + 1), "analog_test_loss": 2.1 / (e + 1),
             "analog_test_acc": 0.3 + 0.1 * e, "float_train_loss": 1.0 / (e + 1),
             "float_test_loss": 1.1 / (e + 1), "float_test_acc": 0.5 + 0.1 * e}
            for e in range(epochs)]


def test_a_one_epoch_run_shows_its_points_and_loss_is_logarithmic():
    plt = report._plt()
    fig = report.curves_figure(history(1))
    try:
        loss, acc = fig.axes
        assert loss.get_yscale() == "log"
        for ax in (loss, acc):
            lo, hi = ax.get_xlim()
            assert lo < 1 < hi and hi - lo >= 1  # the single epoch sits inside a real range
            assert ax.lines and all(line.get_marker() not in (None, "", "None")
                                    for line in ax.lines)
        assert [line.get_ydata()[0] for line in acc.lines] == [0.3, 0.5]
        assert all(t == int(t) for t in loss.get_xticks() if lo <= t <= hi)
    finally:
        plt.close(fig)
