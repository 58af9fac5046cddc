"""The command table's payload layouts as gateware: offsets, element counts and derived lengths.

Shared by the command processor's decoder (which checks a request while it arrives) and its
sequencer (which moves the request's arrays and writes the reply). Every offset and size comes
from `ohmflow.emulator.protocol`; counts that depend on request scalars are logic over them.
"""

from amaranth.hdl import Mux, Signal, Value
from amaranth.lib import data
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig
from ohmflow.emulator.fabrication import FIELDS

__all__ = ["payload_layout", "kind_sizes", "request_layout", "op_flags_layout", "RequestArrays",
           "spans", "spans_layout"]


def payload_layout(fields, cfg: ChipConfig, start: int = 0):
    """Scalars ``{name: (offset, size)}`` (all before the arrays) and arrays ``[(field, size,
    signed)]`` of a payload layout, and the offset after its scalars."""
    scalars, arrays, off = {}, [], start
    for f in fields:
        dt = P.kind_dtype(f.kind, cfg)
        if f.count is None:
            assert not arrays, f"scalar {f.name} after an array"
            scalars[f.name] = (off, dt.itemsize)
            off += dt.itemsize
        else:
            arrays.append((f, dt.itemsize, dt.kind == "i"))
    return scalars, arrays, off


def kind_sizes(cfg: ChipConfig) -> dict[str, int]:
    """Bytes of an element of each kind of the table."""
    return {k.name: P.kind_dtype(k.name, cfg).itemsize for k in P.TABLE.kinds}


def request_layout(cfg: ChipConfig) -> data.StructLayout:
    """Every request scalar of the table, by name (a name has one width in every command)."""
    bits = {}
    for c in P.TABLE.commands:
        for name, (_o, size) in payload_layout(c.request, cfg)[0].items():
            bits.setdefault(name, 8 * size)
            assert bits[name] == 8 * size, f"field {name} has two widths"
    return data.StructLayout(bits)


def op_flags_layout() -> data.StructLayout:
    """One flag per command of the table: the opcode of the frame being handled."""
    return data.StructLayout({c.name: 1 for c in P.TABLE.commands})


class RequestArrays:
    """The arrays of each request: ``arrays(name)`` is ``[(field, offset, count, size, signed)]``
    and the request's length, with counts evaluated over the request scalars ``fields``
    (built once per command: every use shares the same arithmetic)."""

    def __init__(self, cfg: ChipConfig, fields):
        self.cfg = cfg
        env = {k: getattr(cfg, k) for k in cfg.to_dict() if k != "name"}
        self.env = {**env, **{name: fields[name] for name in request_layout(cfg).members}}
        self.memo = {}

    def count(self, text: str):
        """A count expression of the table as logic (scalars are signals, config constants)."""
        return P.evaluate(text, self.env, operand=lambda v: v)

    def __call__(self, name: str):
        if name not in self.memo:
            _scalars, arrs, off = payload_layout(P.command(name).request, self.cfg)
            out = []
            for fld, size, sgn in arrs:
                cnt = self.count(fld.count)
                out.append((fld, off, cnt, size, sgn))
                off = off + cnt * size
            self.memo[name] = out, off
        return self.memo[name]


def spans(cfg: ChipConfig, fields, shape, backward, settle=lambda v, name: v) -> dict:
    """The lengths a request's scalars and its tile's shape give: ``window`` (devices of the
    active shape), ``span_end`` (k0 + k), ``m_out`` (results per vector), ``y_bytes``,
    ``fwd_len``, ``rd_len``, ``rdm_len`` (reply lengths) and ``rdm_base`` (READ_MAP's field
    offsets). ``settle(v, name)`` registers the ones used only once the payload is in."""
    size = kind_sizes(cfg)
    reply = {c.name: payload_layout(c.reply, cfg, start=1) for c in P.TABLE.commands}
    map_sizes = [sz for _f, sz, _s in payload_layout(P.command("LOAD_MAP").request, cfg)[1]]
    k0, k, b = fields["k0"], fields["k"], fields["b"]
    m_out = Mux(backward, shape.n_in, shape.n_out)
    y_bytes = settle(b * m_out * size["adc"], "y_bytes")
    return {
        "window": settle(shape.n_in * shape.n_out, "window"),
        "span_end": settle(k0 + k, "span_end"),  # (the ULX3S's slowest path unregistered)
        "m_out": m_out,
        "y_bytes": y_bytes,
        "fwd_len": settle(reply["FORWARD"][2] + y_bytes + b * size["sat"], "fwd_len"),
        "rd_len": settle(reply["READ"][2] + k * size["w"], "rd_len"),
        "rdm_len": settle(reply["READ_MAP"][2] + k * sum(map_sizes), "rdm_len"),
        "rdm_base": [settle(reply["READ_MAP"][2] + k * sum(map_sizes[:x]), f"rdm_base{x}")
                     for x in range(len(FIELDS))],
    }


def spans_layout(cfg: ChipConfig, shapes_layout) -> data.StructLayout:
    """The layout of `spans` (its shapes, from the same expressions over free signals)."""
    fields = Signal(request_layout(cfg))
    shape = Signal(shapes_layout.elem_shape)
    v = spans(cfg, fields, shape, Signal())
    members = {n: Value.cast(x).shape() for n, x in v.items() if n != "rdm_base"}
    assert not any(Value.cast(x).shape().signed for x in v["rdm_base"])
    widest = max(Value.cast(x).shape().width for x in v["rdm_base"])
    members["rdm_base"] = data.ArrayLayout(widest, len(FIELDS))
    return data.StructLayout(members)
