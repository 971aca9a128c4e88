"""numba versions of the pygame-ce 2.5.8 pixel routines that renderer.py's exact renderer calls.

Bit-identical (on 32-bit surfaces, opaque colours) to:
- pygame.gfxdraw.filled_polygon -> SDL_gfx filledPolygonRGBA / filledPolygonColorMT + hlineColor
- pygame.gfxdraw.aapolygon      -> SDL_gfx aapolygonRGBA / aapolygonColor + _aalineColor(draw_endpoint=0)
  (+ _clipLine, vlineColor, hlineColor, pixelColorNolock, pixelColorWeightNolock, _putPixelAlpha)
- pygame.transform.smoothscale's vertical shrink pass, SSE2 backend (filter_shrink_Y_SSE2), on
  the R, G, B bytes only and written as RGB. The horizontal pass stays pygame's: a numba one was
  exact but 3x slower than SSE2.

Pixel arrays are uint32 (H, W) views of the surface memory, indexed [y, x]
(`pygame.surfarray.pixels2d(surface).T`); colours are mapped pixel values. This is an independent
implementation of the same integer arithmetic, written from SDL_gfx's and pygame's C sources.
"""
import numpy as np
from numba import njit

M32 = 0xFFFFFFFF


@njit(cache=True, inline="always")
def _s16(v):
    """C conversion of an int to Sint16 (wraps modulo 2**16)."""
    return ((v + 32768) & 0xFFFF) - 32768


@njit(cache=True, inline="always")
def _i32(v):
    """C int arithmetic result as a 32-bit two's complement value (wraps)."""
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(cache=True, inline="always")
def _f2s16(f):
    """(Sint16)(float): x86-64 cvttss2si to a 32-bit int (0x80000000 when out of range), low 16 bits."""
    if f != f or f >= 2147483648.0 or f < -2147483648.0:
        return 0  # low 16 bits of INT_MIN
    return _s16(np.int64(f))


@njit(cache=True, inline="always")
def _coord(f):
    """gfxdraw's Sint16FromObj: int(float) (truncation toward zero), then a C cast to Sint16."""
    return _s16(np.int64(f))


# ---------------------------------------------------------------------------------------------
# pixel writes. fmt = (Rmask, Gmask, Bmask, Amask, Rshift, Gshift, Bshift, Ashift), as int64

@njit(cache=True, inline="always")
def _blend_channel(dc, color, mask, shift, alpha):
    # _putPixelAlpha's 32-bpp DEFAULT_ALPHA_PIXEL_ROUTINE, in Uint32 arithmetic
    d = ((color & mask) - (dc & mask)) & M32
    d = ((d >> shift) * alpha) & M32
    d = ((d >> 8) << shift) & M32
    return ((dc & mask) + d) & mask


@njit(cache=True)
def _put_alpha(pix, x, y, color, alpha, cx0, cy0, cx1, cy1, fmt):
    """_putPixelAlpha on a 32-bpp surface; (cx0, cy0, cx1, cy1) inclusive clip box."""
    if x >= cx0 and x <= cx1 and y >= cy0 and y <= cy1:
        pix[y, x] = _blend_px(np.int64(pix[y, x]), color, alpha, fmt)


@njit(cache=True, inline="always")
def _blend_px(dc, color, alpha, f):
    """The new value of pixel dc after _putPixelAlpha(color, alpha) (32 bpp); f = format tuple."""
    if alpha == 255:
        return color
    v = (_blend_channel(dc, color, f[0], f[4], alpha)
         | _blend_channel(dc, color, f[1], f[5], alpha)
         | _blend_channel(dc, color, f[2], f[6], alpha))
    if f[3] != 0:
        v |= _blend_channel(dc, color, f[3], f[7], alpha)
    return v


@njit(cache=True, inline="always")
def _mapped(color, a, fmt):
    """SDL_MapRGBA of the colour's r, g, b with alpha a (colour given mapped with alpha 255; Aloss 0)."""
    if fmt[3] == 0:
        return color
    return (color & ~fmt[3] & M32) | ((a << fmt[7]) & fmt[3])


@njit(cache=True, inline="always")
def _hline(pix, x1, x2, y, color, cx0, cy0, cx1, cy1):
    """hlineColor, opaque colour: inclusive span, endpoints swapped if needed, clipped."""
    if x1 > x2:
        x1, x2 = x2, x1
    if x2 < cx0 or x1 > cx1 or y < cy0 or y > cy1:
        return
    if x1 < cx0:
        x1 = cx0
    if x2 > cx1:
        x2 = cx1
    row = pix[y]
    for x in range(x1, x2 + 1):
        row[x] = color


@njit(cache=True)
def _vline(pix, x, y1, y2, color, cx0, cy0, cx1, cy1):
    """vlineColor, opaque colour."""
    if y1 > y2:
        y1, y2 = y2, y1
    if x < cx0 or x > cx1 or y2 < cy0 or y1 > cy1:
        return
    if y1 < cy0:
        y1 = cy0
    if y2 > cy1:
        y2 = cy1
    for y in range(y1, y2 + 1):
        pix[y, x] = color


# ---------------------------------------------------------------------------------------------
# filled polygon

@njit(cache=True)
def _merge(b, lo, n1, n, tmp):
    i = lo
    j = lo + n1
    e1 = lo + n1
    e2 = lo + n
    k = 0
    while i < e1 and j < e2:
        if _i32(b[i] - b[j]) <= 0:
            tmp[k] = b[i]
            i += 1
        else:
            tmp[k] = b[j]
            j += 1
        k += 1
    while i < e1:
        tmp[k] = b[i]
        i += 1
        k += 1
    for t in range(k):
        b[lo + t] = tmp[t]


@njit(cache=True)
def _msort(b, n, tmp):
    """glibc (2.36) qsort for small arrays: top-down merge sort (msort_with_tmp: halves n // 2 and
    n - n // 2, merge taking the left element while cmp(left, right) <= 0), with SDL_gfx's
    comparator cmp(a, b) = a - b in C int arithmetic. That subtraction wraps for values more than
    2**31 apart (x coordinates 32768 or more apart): only then does the order differ from a plain
    sort. (Written without recursion: numba's on-disk cache mishandles recursive functions.)"""
    stack = np.empty((3 * 64, 3), np.int64)
    sp = 0
    stack[0, 0] = 0
    stack[0, 1] = n
    stack[0, 2] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        lo = stack[sp, 0]
        m = stack[sp, 1]
        phase = stack[sp, 2]
        if m <= 1:
            continue
        n1 = m // 2
        if phase == 1:
            _merge(b, lo, n1, m, tmp)
            continue
        stack[sp, 2] = 1  # merge after both halves are sorted
        sp += 1
        stack[sp, 0] = lo + n1
        stack[sp, 1] = m - n1
        stack[sp, 2] = 0
        sp += 1
        stack[sp, 0] = lo
        stack[sp, 1] = n1
        stack[sp, 2] = 0
        sp += 1


@njit(cache=True)
def _filled_polygon(pix, vx, vy, n, color, cx0, cy0, cx1, cy1, ints, tmp):
    """filledPolygonColorMT (opaque colour). Rows outside [cy0, cy1] are skipped: hlineColor
    would clip them anyway. vx, vy: Sint16 values (int64 array)."""
    if n < 3:
        return
    miny = vy[0]
    maxy = vy[0]
    for i in range(1, n):
        if vy[i] < miny:
            miny = vy[i]
        elif vy[i] > maxy:
            maxy = vy[i]
    ylo = miny if miny > cy0 else cy0
    yhi = maxy if maxy < cy1 else cy1
    for y in range(ylo, yhi + 1):
        k = 0
        for i in range(n):
            if i == 0:
                i1 = n - 1
                i2 = 0
            else:
                i1 = i - 1
                i2 = i
            y1 = vy[i1]
            y2 = vy[i2]
            if y1 < y2:
                x1 = vx[i1]
                x2 = vx[i2]
            elif y1 > y2:
                y2 = vy[i1]
                y1 = vy[i2]
                x2 = vx[i1]
                x1 = vx[i2]
            else:
                continue
            if (y >= y1 and y < y2) or (y == maxy and y > y1 and y <= y2):
                # ((65536 * (y - y1)) / (y2 - y1)) * (x2 - x1) + 65536 * x1, in C int arithmetic
                num = _i32(65536 * (y - y1))
                den = y2 - y1
                q = abs(num) // den  # C division truncates toward zero (den > 0)
                if num < 0:
                    q = -q
                v = _i32(_i32(q * (x2 - x1)) + _i32(65536 * x1))
                ints[k] = v
                k += 1
        if k == 2:  # the usual case, inline: glibc's merge of two elements
            if _i32(ints[0] - ints[1]) > 0:
                t = ints[0]
                ints[0] = ints[1]
                ints[1] = t
        elif k > 2:
            _msort(ints, k, tmp)
        for i in range(0, k - 1, 2):
            xa = _i32(ints[i] + 1)
            xa = (xa >> 16) + ((xa & 32768) >> 15)
            xb = _i32(ints[i + 1] - 1)
            xb = (xb >> 16) + ((xb & 32768) >> 15)
            _hline(pix, _s16(xa), _s16(xb), y, color, cx0, cy0, cx1, cy1)


# ---------------------------------------------------------------------------------------------
# anti-aliased polygon

@njit(cache=True, inline="always")
def _clip_code(x, y, left, top, right, bottom):
    code = 0
    if x < left:
        code |= 1
    elif x > right:
        code |= 2
    if y < top:
        code |= 8
    elif y > bottom:
        code |= 4
    return code


@njit(cache=True)
def _clip_line(x1, y1, x2, y2, left, top, right, bottom):
    """_clipLine (Cohen-Sutherland with a single-precision slope); returns (draw, x1, y1, x2, y2)."""
    for _ in range(64):
        c1 = _clip_code(x1, y1, left, top, right, bottom)
        c2 = _clip_code(x2, y2, left, top, right, bottom)
        if (c1 | c2) == 0:
            return True, x1, y1, x2, y2
        if (c1 & c2) != 0:
            return False, x1, y1, x2, y2
        if c1 == 0:
            x1, x2 = x2, x1
            y1, y2 = y2, y1
            c1, c2 = c2, c1
        if x2 != x1:
            m = np.float32(y2 - y1) / np.float32(x2 - x1)
        else:
            m = np.float32(1.0)
        if c1 & 1:
            y1 = _s16(y1 + _f2s16(np.float32(left - x1) * m))
            x1 = left
        elif c1 & 2:
            y1 = _s16(y1 + _f2s16(np.float32(right - x1) * m))
            x1 = right
        elif c1 & 4:
            if x2 != x1:
                x1 = _s16(x1 + _f2s16(np.float32(bottom - y1) / m))
            y1 = bottom
        elif c1 & 8:
            if x2 != x1:
                x1 = _s16(x1 + _f2s16(np.float32(top - y1) / m))
            y1 = top
    return False, x1, y1, x2, y2  # (not reached in practice)


@njit(cache=True)
def _aaline(pix, x1, y1, x2, y2, color, cx0, cy0, cx1, cy1, ly0, ly1, fmt):
    """_aalineColor(..., draw_endpoint=0) with an opaque colour (Wu's algorithm, 8 AA bits).
    The line is clipped to the clip box (cx0, ly0)-(cx1, ly1); writes go to rows cy0..cy1 only."""
    ok, x1, y1, x2, y2 = _clip_line(x1, y1, x2, y2, cx0, ly0, cx1, ly1)
    if not ok:
        return
    # 1. walk from the upper end point down
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, xx1 = xx1, xx0
        yy0, yy1 = yy1, yy0
    dx = xx1 - xx0
    dy = yy1 - yy0
    # 2. vertical and horizontal lines are plain lines
    if dx == 0:
        if dy > 0:
            _vline(pix, x1, yy0, _s16(yy0 + dy), color, cx0, cy0, cx1, cy1)
        else:
            _put_alpha(pix, x1, y1, color, 255, cx0, cy0, cx1, cy1, fmt)
        return
    if dy == 0:
        _hline(pix, xx0, _s16(xx0 + dx), y1, color, cx0, cy0, cx1, cy1)
        return
    # 3. the first end point at full weight, then Wu's walk along the major axis
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    _put_alpha(pix, x1, y1, color, 255, cx0, cy0, cx1, cy1, fmt)
    if dy > dx:
        _wu_steep(pix, xx0, yy0, dx, dy, xdir, color, cx0, cy0, cx1, cy1, fmt)
    else:
        _wu_shallow(pix, xx0, yy0, dx, dy, xdir, color, cx0, cy0, cx1, cy1, fmt)


@njit(cache=True)
def _wu_steep(pix, xx0, yy0, dx, dy, xdir, color, cx0, cy0, cx1, cy1, fmt):
    """Wu's walk one row at a time (dy > dx > 0): each row blends the pixel pair that straddles the line."""
    erracc = 0
    erradj = ((((dx << 16) // dy) & M32) << 16) & M32
    x0pxdir = xx0 + xdir
    dy -= 1
    while dy:
        tmp = erracc
        erracc = (erracc + erradj) & M32
        if erracc <= tmp:
            xx0 = x0pxdir
            x0pxdir += xdir
        yy0 += 1
        wgt = (erracc >> 24) & 255
        # pixelColorWeightNolock(xx0, yy0, 255 - wgt) and (x0pxdir, yy0, wgt), written out
        # here (no array-passing call per pixel: numba's per-call overhead dominated)
        py = _s16(yy0)
        if py >= cy0 and py <= cy1:
            row = pix[py]
            a = (255 * (255 - wgt)) >> 8
            px = _s16(xx0)
            if px >= cx0 and px <= cx1:
                row[px] = _blend_px(np.int64(row[px]), _mapped(color, a, fmt), a, fmt)
            a = (255 * wgt) >> 8
            px = _s16(x0pxdir)
            if px >= cx0 and px <= cx1:
                row[px] = _blend_px(np.int64(row[px]), _mapped(color, a, fmt), a, fmt)
        dy -= 1


@njit(cache=True)
def _wu_shallow(pix, xx0, yy0, dx, dy, xdir, color, cx0, cy0, cx1, cy1, fmt):
    """Wu's walk one column at a time (dx >= dy > 0): each column blends the pixel pair that straddles the line."""
    erracc = 0
    erradj = ((((dy << 16) // dx) & M32) << 16) & M32
    y0p1 = yy0 + 1
    dx -= 1
    while dx:
        tmp = erracc
        erracc = (erracc + erradj) & M32
        if erracc <= tmp:
            yy0 = y0p1
            y0p1 += 1
        xx0 += xdir
        wgt = (erracc >> 24) & 255
        px = _s16(xx0)
        if px >= cx0 and px <= cx1:
            a = (255 * (255 - wgt)) >> 8
            py = _s16(yy0)
            if py >= cy0 and py <= cy1:
                pix[py, px] = _blend_px(np.int64(pix[py, px]), _mapped(color, a, fmt), a, fmt)
            a = (255 * wgt) >> 8
            py = _s16(y0p1)
            if py >= cy0 and py <= cy1:
                pix[py, px] = _blend_px(np.int64(pix[py, px]), _mapped(color, a, fmt), a, fmt)
        dx -= 1


@njit(cache=True)
def _aapolygon(pix, vx, vy, n, color, cx0, cy0, cx1, cy1, ly0, ly1, fmt):
    """aapolygonColor: _aalineColor over consecutive vertices, then last -> first."""
    if n < 3:
        return
    for i in range(1, n):
        _aaline(pix, vx[i - 1], vy[i - 1], vx[i], vy[i], color, cx0, cy0, cx1, cy1, ly0, ly1, fmt)
    _aaline(pix, vx[n - 1], vy[n - 1], vx[0], vy[0], color, cx0, cy0, cx1, cy1, ly0, ly1, fmt)


@njit(cache=True)
def draw_polys(pix, xs, ys, starts, colors, aa, fill, clip, row0, row1, fmt):
    """Draw polygons p = 0..len(colors)-1 in order, each as gfxdraw.aapolygon (if aa[p]) and then
    gfxdraw.filled_polygon (if fill[p]) with the same float vertex coordinates
    xs[starts[p]:starts[p+1]], ys[...] and opaque mapped colour colors[p].

    pix: uint32 (H, W) view of the surface; clip = (x, y, w, h), the surface's clip rect;
    only rows row0 <= y < row1 are written (every write is row-local, so this equals drawing
    everything and keeping those rows). fmt = int64[8] masks and shifts (see surface_format)."""
    cx0 = clip[0]
    cx1 = clip[0] + clip[2] - 1
    cy0 = clip[1]
    cy1 = clip[1] + clip[3] - 1
    if clip[2] == 0 or clip[3] == 0:
        return
    ly0 = cy0
    ly1 = cy1
    if row0 > cy0:
        cy0 = row0
    if row1 - 1 < cy1:
        cy1 = row1 - 1
    if cy1 < cy0:
        return
    fmt = (fmt[0], fmt[1], fmt[2], fmt[3], fmt[4], fmt[5], fmt[6], fmt[7])  # a tuple: passed by value
    nmax = 0
    for p in range(len(colors)):
        nmax = max(nmax, starts[p + 1] - starts[p])
    vx = np.empty(nmax, np.int64)
    vy = np.empty(nmax, np.int64)
    ints = np.empty(nmax, np.int64)
    tmp = np.empty(nmax, np.int64)
    for p in range(len(colors)):
        s = starts[p]
        n = starts[p + 1] - s
        for i in range(n):
            vx[i] = _coord(xs[s + i])
            vy[i] = _coord(ys[s + i])
        c = np.int64(colors[p])
        if aa[p]:
            _aapolygon(pix, vx, vy, n, c, cx0, cy0, cx1, cy1, ly0, ly1, fmt)
        if fill[p]:
            _filled_polygon(pix, vx, vy, n, c, cx0, cy0, cx1, cy1, ints, tmp)


# ---------------------------------------------------------------------------------------------
# smoothscale (SSE2 backend), shrink passes. Pixels are handled as 4 bytes (little endian).

@njit(cache=True, inline="always")
def _mulhi(a, b):
    return ((a & 0xFFFF) * (b & 0xFFFF)) >> 16


@njit(cache=True, inline="always")
def _packus(v):
    v &= 0xFFFF
    if v >= 32768:
        return 0
    return 255 if v > 255 else v


@njit(cache=True, inline="always")
def _lanes(p, shifts):
    """The 3 bytes of pixel p at `shifts` as 21-bit lanes of one int64: sums of up to 8,224 rows
    stay within their lane, so one addition accumulates all three channels."""
    return (((p >> shifts[0]) & 255) | (((p >> shifts[1]) & 255) << 21) | (((p >> shifts[2]) & 255) << 42))


@njit(cache=True)
def shrink_y_rgb(top, bottom, flip_top, out, shifts):
    """filter_shrink_Y_SSE2 on the rows of `top` (bottom row first if flip_top) followed by the
    rows of `bottom` (uint32, same width), for the 3 bytes at `shifts` (R, G, B): out (dh, w, 3)
    uint8 gets those bytes of the shrunk pixels. The fourth byte's lane is never read, and each
    byte's arithmetic is independent of the others', so this equals the full pass's bytes."""
    nt = top.shape[0]
    sh = nt + bottom.shape[0]
    w = top.shape[1]
    dh = out.shape[0]
    s = (np.int64(shifts[0]), np.int64(shifts[1]), np.int64(shifts[2]))
    yspace = 0x4000 * sh // dh
    yrecip = (0x40000000 // yspace) & 0xFFFF
    acc = np.zeros(w, np.int64)
    yc = yspace
    dy = 0
    for y in range(sh):
        if y < nt:
            srow = top[nt - 1 - y] if flip_top else top[y]
        else:
            srow = bottom[y - nt]
        if yc > 0x4000:
            for x in range(w):
                acc[x] += _lanes(np.int64(srow[x]), s)
            yc -= 0x4000
        else:
            yf = 0x4000 - yc
            write = dy < dh
            for x in range(w):
                p = np.int64(srow[x])
                a = acc[x]
                nxt = 0
                for c in range(3):
                    b = ((p >> s[c]) & 255) << 2
                    r = _packus(_mulhi(_mulhi(b, yc) + ((a >> (21 * c)) & 0xFFFF), yrecip))
                    nxt |= _mulhi(b, yf) << (21 * c)
                    if write:
                        out[dy, x, c] = r
                acc[x] = nxt
            dy += 1
            yc = yspace - yf
