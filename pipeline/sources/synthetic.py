"""Deterministic synthetic transactions in the raw UCI Online Retail II layout.

What belongs here: the generator that stands in for the real workbook when it is absent (tests, demos,
scale runs). It yields raw lines exactly as the readers would produce them from the UCI files, quirks
included: cancellations, bad-debt adjustments, guest checkouts, service stock codes, exact duplicates,
zero-price write-offs and missing descriptions. What does not belong here: reading or cleaning real files
(``pipeline.sources.readers``, ``pipeline.staging.cleaning``) and measuring how real the output is
(``pipeline.sources.fingerprints``).

How the stream is built. Small state is drawn once: a product catalogue organised in themed families
(colour variants of one item, or one theme over several items), a customer table (country, basket size,
favourite families, return habit) and a schedule saying on which day each invoice happens and how many
lines it has. Then consecutive trading days are generated block by block (a block holds ~60k lines at
most), each fully vectorised with numpy: invoice times, baskets (families picked from the customer's
favourites or by a flatter global popularity, then one or more variants per family), quantities and
prices, service lines, duplicates, write-offs and returns. Returns and duplicates are planned per invoice
in the schedule, so the customers' product budget makes room for them and the total lands on ``n_lines``.
A returned line is picked when its purchase is generated and waits in a small queue until its day comes,
so every product cancellation of a known customer refers to an earlier purchase of the same stock code at
the same price, with no larger quantity. Blocks go to a
buffer that is cut into chunks of ``chunk_lines``; blocks depend on ``n_lines`` and never on the chunking,
so the concatenated stream is identical for any ``chunk_lines``. Memory therefore stays at one chunk, one
block and the small state, whatever ``n_lines`` is.

Rates and distributions are calibrated on the real sheet "Year 2009-2010" (see
``/work/shared/docs/dataset.md`` and ``pipeline.sources.fingerprints``); the constants below say where they
come from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from pipeline.sources.contract import UCI_HEADER

#: Columns of the generated frames: the UCI export header, as a real export has it.
COLUMNS = list(UCI_HEADER)

#: Version of the generator's output. Bump it in any change that alters a single generated line for some
#: ``(n_lines, random_state)``: the synthetic source's fingerprint includes it (``resources.source``), so an
#: existing warehouse regenerates its raw lines instead of reusing lines of the previous generator.
#: ``tests/pipeline/sources/test_synthetic.py`` pins a digest of the output per version to catch a forgotten bump.
GENERATOR_VERSION = "2"

# Reference scale: the real 2009-2010 sheet. Counts of rare events are expressed per this many lines.
_REAL_LINES = 525_461
_REAL_CUSTOMERS = 4_383
_FIRST_INVOICE = 489_434

_START = np.datetime64("2009-12-01", "D")
_END = np.datetime64("2011-12-09", "D")  # last trading day, inclusive (like the full UCI dataset)

# fmt: off
# The shop is shut on Saturdays, from Christmas Eve to 3 January and on UK bank holidays (all absent from
# the real data), plus Easter Sunday.
_HOLIDAYS = np.array(
    ["2010-04-02", "2010-04-04", "2010-04-05", "2010-05-03", "2010-05-31", "2010-08-30", "2011-04-22",
     "2011-04-24", "2011-04-25", "2011-04-29", "2011-05-02", "2011-05-30", "2011-08-29"],
    dtype="datetime64[D]",
)
# Lines per open day by month (Jan..Dec), from monthly line shares of the real sheet divided by open days:
# flat through summer, rising from September to the November peak.
_MONTH_WEIGHT = np.array([0.24, 0.23, 0.29, 0.27, 0.28, 0.29, 0.23, 0.26, 0.30, 0.41, 0.58, 0.45])
# Monday..Sunday; Friday and Sunday are quieter, Saturday closed.
_WEEKDAY_WEIGHT = np.array([1.0, 1.0, 0.96, 1.05, 0.76, 0.0, 0.85])
# Lines by hour 7..20 for each weekday (real crosstab / 100): Thursday trades into the evening, Sunday 9-16.
_HOUR_WEIGHT = np.array([
    [1, 14, 81, 90, 106, 144, 145, 116, 95, 79, 54, 16, 0.2, 0.1],
    [2, 12, 72, 70, 96, 143, 146, 127, 113, 78, 59, 26, 4, 0.5],
    [1, 17, 68, 75, 102, 143, 131, 143, 86, 64, 72, 2, 0.2, 0.1],
    [2, 13, 58, 84, 106, 123, 132, 145, 93, 74, 61, 41, 50, 13],
    [1, 15, 61, 68, 107, 104, 86, 101, 75, 46, 44, 6, 0.2, 0.1],
    [1, 15, 61, 68, 107, 104, 86, 101, 75, 46, 44, 6, 0.2, 0.1],  # Saturday: never used
    [0, 0, 0.6, 55, 124, 154, 139, 107, 115, 53, 0.7, 0, 0, 0],
])
_FIRST_HOUR = 7

# Non-UK customer countries weighted by their share of real lines (per 10,000).
_COUNTRIES = {
    "EIRE": 184, "Germany": 155, "France": 110, "Netherlands": 53, "Spain": 24, "Switzerland": 23,
    "Portugal": 21, "Belgium": 20, "Channel Islands": 17, "Sweden": 17, "Italy": 14, "Australia": 12,
    "Cyprus": 11, "Austria": 10, "Greece": 10, "United Arab Emirates": 8, "Denmark": 8, "Norway": 7,
    "Finland": 7, "Unspecified": 6, "USA": 5, "Japan": 4, "Poland": 4, "Malta": 3, "Lithuania": 3,
    "Singapore": 2, "RSA": 2, "Bahrain": 2, "Canada": 1.5, "Thailand": 1.5, "Hong Kong": 1.5, "Israel": 1.4,
    "Iceland": 1.4, "Korea": 1.2, "Brazil": 1.2, "West Indies": 1.0, "Bermuda": 0.7, "Nigeria": 0.6,
}
# Postage per parcel by destination (real POST price medians); 40.00 elsewhere.
_POSTAGE = {
    "Germany": 18.0, "France": 18.0, "Denmark": 18.0, "Belgium": 15.0, "Netherlands": 15.0, "Cyprus": 15.0,
    "EIRE": 25.0, "Italy": 28.0, "Portugal": 28.0, "Spain": 28.0, "Greece": 50.0,
}
# Retail price points used by the shop; base prices snap to these.
_PRICE_POINTS = np.array([
    0.10, 0.12, 0.14, 0.19, 0.21, 0.25, 0.29, 0.32, 0.36, 0.39, 0.42, 0.55, 0.65, 0.72, 0.79, 0.83, 0.85,
    0.95, 1.06, 1.25, 1.45, 1.49, 1.65, 1.69, 1.85, 1.95, 2.10, 2.46, 2.55, 2.95, 3.25, 3.39, 3.75, 3.95,
    4.25, 4.65, 4.95, 5.45, 5.95, 6.35, 6.75, 7.45, 7.95, 8.50, 8.95, 9.95, 10.95, 12.75, 14.95, 16.95,
    18.95, 19.95, 24.95, 29.95, 34.95, 39.95, 49.95, 59.95, 79.95, 99.95, 125.00, 165.00, 295.00,
])
# fmt: on
_COUNTRY_NAMES = np.array(["United Kingdom", *_COUNTRIES], dtype=object)
_COUNTRY_INDEX = {str(name): i for i, name in enumerate(_COUNTRY_NAMES)}
# Carriage (C2) replaces postage for these destinations; foreign dotcom guests come from these.
_CARRIAGE_COUNTRIES = [_COUNTRY_INDEX["EIRE"], _COUNTRY_INDEX["Channel Islands"]]
_GUEST_ABROAD = [_COUNTRY_INDEX[name] for name in ("EIRE", "Germany", "France", "United Arab Emirates")]
# Share of customers outside the UK; their invoices are slightly larger, which gives ~92.5% UK lines.
_NON_UK_CUSTOMER_SHARE = 0.08
# Quantiles of the base price per product, (probability, log price): the real per-product median prices
# (0.55 / 1.25 / 2.10 / 4.25 / 7.95 at 10/25/50/75/90%) shifted down ~13%, because dotcom lines sell at
# twice the base price and pull line-level prices up to the real ones.
_PRICE_QUANTILES = (
    np.array([0.0, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99, 1.0]),
    np.log([0.11, 0.60, 1.38, 2.30, 4.30, 7.5, 26.0, 280.0]),
)
_PACK_SIZES = np.array([1, 2, 3, 4, 6, 8, 10, 12, 16, 24, 25, 48])

# Lowercase notes the warehouse types on zero-price stock movements.
_WRITE_OFF_NOTES = np.array(
    "damaged|damages|missing|?|checked|smashed|given away|dotcom|crushed|ebay sales|temp|poor quality|"
    "coding mix up|Rusty|found|wrong invc|sold as set|wet damaged|mouldy|amazon|check|lost".split("|"),
    dtype=object,
)

_MAX_FAMILY = 12
_MAX_FAVOURITES = 32
_NS_PER_MINUTE = 60_000_000_000
_MAX_LINES_PER_INVOICE = 675
_BLOCK_LINES = 60_000
# Line budget shares (real sheet): products on registered customers' invoices, products on guest
# invoices, and the expected share of returned and duplicated lines the customers' budget makes room for.
_CUSTOMER_SHARE = 0.76
_GUEST_SHARE = 0.1965
_EXPECTED_EXTRA = 0.031
# Popularity exponent for families drawn outside a customer's favourites (trade customers, dotcom
# guests): below 1 flattens the heavy tail, so big orders do not all hold the same best sellers.
_EXPLORE_FLATTENING = (0.7, 0.4)

# Vocabulary of the themed catalogue. Colour families vary the colour or pattern of one item; theme
# families put one theme on several items. Both are bought together, which is what Apriori finds.
_VARIANTS = tuple(
    "PINK|GREEN|BLUE|RED|IVORY|WHITE|BLACK|CREAM|YELLOW|PURPLE|ORANGE|LILAC|TURQUOISE|SILVER|GOLD|CHOCOLATE|"
    "NATURAL|ROSES|RED RETROSPOT|PINK POLKADOT|BLUE POLKADOT|VINTAGE PAISLEY|SCANDINAVIAN|WOODLAND|SPACEBOY|"
    "DOLLY GIRL|SKULLS|STRAWBERRY|OWLS|BIRDS|BUTTERFLY|HEARTS|STARS|FLORAL|GINGHAM|UNION JACK|PARIS|LONDON|"
    "VINTAGE LEAF|ENGLISH ROSE|SWEETHEART|APPLES|CHERRY|LEMON|SNOWFLAKE|REINDEER|SAGE|DUCK EGG BLUE|AQUA|"
    "FUSCHIA".split("|")
)
_MATERIALS = tuple(
    "ENAMEL|ZINC|GLASS|CERAMIC|WOODEN|FELT|METAL|PORCELAIN|RETRO|VINTAGE|ANTIQUE|HANGING|SMALL|LARGE|JUMBO|"
    "MINI|SET OF 3|SET OF 6|PACK OF 12|SPOTTY|HEART|STAR|FLOWER|BIRD|ROUND|SQUARE|TALL|GLITTER|FRENCH|"
    "REGENCY|BAROQUE|EDWARDIAN|VICTORIAN|RUSTIC|WICKER|TIN|PAPER|COTTON|KNITTED|CRYSTAL".split("|")
)
_THEMES = tuple(
    "RED RETROSPOT|PINK POLKADOT|VINTAGE PAISLEY|WOODLAND|SPACEBOY|DOLLY GIRL|SKULL|STRAWBERRY|OWL|BIRDCAGE|"
    "BUTTERFLY|VINTAGE LEAF|ENGLISH ROSE|SWEETHEART|PANTRY|FAIRY CAKE|APPLE|CHERRY BLOSSOM|LEMON|UNION JACK|"
    "PARIS|LONDON|KEEP CALM|VINTAGE CARAVAN|SEASIDE|BOTANICAL|BAROQUE|MOROCCAN|SCANDINAVIAN|GINGHAM|"
    "HEART OF WICKER|POPPY|LAVENDER|TEA PARTY|CIRCUS PARADE|ROBOT|DINOSAUR|PIRATE|FAIRY|BALLERINA|JAM MAKING|"
    "GARDEN|BEE|HEN HOUSE|FOLK ART|ALPHABET|DOILY|FLAMINGO|CACTUS|ZEBRA|CHRISTMAS|SNOWFLAKE|REINDEER|SANTA|"
    "ANGEL|NOEL".split("|")
)
_ITEMS = tuple(
    "MUG|TEACUP AND SAUCER|CAKE TIN|LUNCH BOX|LUNCH BAG|JUMBO BAG|CHARLOTTE BAG|SHOPPER BAG|NOTEBOOK|"
    "DOORMAT|CUSHION COVER|HOT WATER BOTTLE|T-LIGHT HOLDER|CANDLE|LANTERN|PHOTO FRAME|WALL CLOCK|"
    "ALARM CLOCK|TRINKET BOX|STORAGE JAR|BISCUIT TIN|PLATE|BOWL|TEA TOWEL|APRON|OVEN GLOVE|PURSE|MIRROR|"
    "COAT RACK|HOOK|DRAWER KNOB|BUNTING|PAPER NAPKINS|CAKE CASES|PARTY BAG|GIFT WRAP|GIFT TAGS|"
    "WRAPPING PAPER|GREETING CARD|STICKER SHEET|PENCILS|ERASER|CHALKBOARD|MEMO BOARD|DOORSTOP|"
    "WATERING CAN|PLANT POT|BIRD HOUSE|WIND CHIME|DECORATION|BAUBLE|STOCKING|GARLAND|FRIDGE MAGNET|"
    "KEYRING|TISSUES|PLASTERS IN TIN|MATCHBOX|JIGSAW|SNAP CARDS|SPINNING TOP|SOAP DISH|WASHBAG|"
    "MAKE UP BAG|HAIR CLIP|BRACELET|NECKLACE|BEAKER|TUMBLER|JUG|MILK PAN|CHOPPING BOARD|EGG CUP|TEAPOT|"
    "COASTER|PLACEMAT|PEG BAG|SEWING KIT|UMBRELLA|HAND WARMER|SCARF|PICNIC BASKET|PARASOL|BATH SPONGE|"
    "RIBBON REEL|BUTTON BOX|PASSPORT COVER|LUGGAGE TAG|WALL ART|SIGN|NIGHT LIGHT|FAIRY LIGHTS|BOTTLE BAG|"
    "TOY TIDY|LAUNDRY BAG|CUTLERY SET|RECIPE BOX|SPICE TIN|CAKE STAND|SERVING TRAY|HEART WREATH|PEN|"
    "ROLLER SKATES|HAND MIRROR|FOLDING CHAIR|SHELF|DRAWER CABINET|FRAME|CLOCK MAGNET|JEWELLERY BOX".split("|")
)
_SEASONAL_WORDS = ("CHRISTMAS", "SNOWFLAKE", "REINDEER", "SANTA", "ANGEL", "NOEL", "BAUBLE", "STOCKING")

# Hand-written anchor families; they take the top popularity ranks so the classic rules of the real data
# (the REGENCY teacups with lift around 20) exist under the same names.
# (item, "|"-separated variants, cohesion, suffix codes?, variant before item?)
_ANCHORS = tuple(
    (item, tuple(variants.split("|")), cohesion, suffix, variant_first)
    for item, variants, cohesion, suffix, variant_first in (
        ("REGENCY TEACUP AND SAUCER", "GREEN|PINK|ROSES", 0.85, False, True),
        ("HANGING HEART T-LIGHT HOLDER", "WHITE|RED|PINK", 0.3, True, True),
        (
            "JUMBO BAG",
            "RED RETROSPOT|PINK POLKADOT|VINTAGE PAISLEY|STRAWBERRY|OWLS|WOODLAND|SCANDINAVIAN|TOYS",
            0.2,
            False,
            False,
        ),
        (
            "LUNCH BAG",
            "RED RETROSPOT|PINK POLKADOT|CARS BLUE|WOODLAND|BLACK SKULL|SPACEBOY DESIGN|SUKI DESIGN|"
            "DOLLY GIRL DESIGN",
            0.22,
            False,
            False,
        ),
        ("ALARM CLOCK BAKELIKE", "RED|GREEN|PINK|IVORY|ORANGE|CHOCOLATE", 0.3, False, False),
        (
            "PAPER CHAIN KIT",
            "50'S CHRISTMAS|VINTAGE CHRISTMAS|RETROSPOT|SKULLS|EMPIRE|LONDON",
            0.2,
            False,
            False,
        ),
        ("WOODEN FRAME", "WHITE FINISH|ANTIQUE WHITE|NATURAL|PAINTED", 0.3, True, False),
        (
            "CHARLOTTE BAG",
            "RED RETROSPOT|PINK POLKADOT|SUKI DESIGN|WOODLAND|VINTAGE ALPHABET",
            0.25,
            False,
            False,
        ),
    )
)


# Anchor popularity relative to the top ranks: the teacups sit in ~4% of baskets (pair lift ~20 and
# confidence ~0.9, like the classic real rules), the white hanging heart is a best seller.
_ANCHOR_BOOST = np.array([0.12, 1.0, 0.9, 0.9, 0.7, 0.7, 0.6, 0.6])
# Spread of log family popularity: calibrated so the top 10 / top 100 products hold ~3.5% / ~19% of lines
# at 200k lines (the catalogue grows with n_lines, so the shares drift down slowly at larger sizes).
_FAMILY_SIGMA = 1.15


@dataclass(frozen=True)
class _Catalogue:
    """Products (index p) grouped in families (index f); variant slots padded with -1."""

    stock_code: np.ndarray  # object, upper case
    stock_code_lower: np.ndarray  # object, lowercase suffix variant (same as stock_code without suffix)
    description: np.ndarray  # object, current description
    alt_description: np.ndarray  # object, description used from alt_from_day on
    alt_from_day: np.ndarray  # int, day index; beyond the span when the product keeps one description
    price: np.ndarray  # base price before price_change_day
    price_after: np.ndarray  # base price from price_change_day on
    price_change_day: np.ndarray
    bulk_factor: np.ndarray  # price multiplier for bulk quantities
    dotcom_factor: np.ndarray  # price multiplier on guest (dotcom) orders
    pack: np.ndarray  # typical pack size sold to trade customers
    has_suffix: np.ndarray  # bool, stock code ends with a letter
    family_members: np.ndarray  # (families, _MAX_FAMILY) product indices, -1 padded
    family_size: np.ndarray
    variant_weight: np.ndarray  # (families, _MAX_FAMILY), 0 padded
    cohesion: np.ndarray  # probability that another variant joins the basket with the first one
    family_weight: np.ndarray
    family_seasonal: np.ndarray  # bool, Christmas goods
    family_cdf: np.ndarray  # (audience, season, families) cumulative popularity: favourites, trade, guests
    product_cdf: np.ndarray  # popularity over products, for write-offs


@dataclass(frozen=True)
class _Customers:
    """Registered customers (index c)."""

    customer_id: np.ndarray  # float64 like the raw column
    country: np.ndarray  # index into _COUNTRY_NAMES
    n_invoices: np.ndarray
    favourites: np.ndarray  # (customers, _MAX_FAVOURITES) family indices
    favourite_cdf: np.ndarray  # (customers, _MAX_FAVOURITES) cumulative weights, 1.0 padded
    p_favourite: np.ndarray  # share of basket families drawn from the favourites
    unit_share: np.ndarray  # share of lines bought in single units rather than packs
    volume: np.ndarray  # multiplier on pack quantities (wholesalers buy more)
    return_rate: np.ndarray  # probability that an invoice is partly returned later


@dataclass(frozen=True)
class _Calendar:
    """Trading days from _START to _END."""

    dates: np.ndarray  # datetime64[D]
    weekday: np.ndarray  # 0 = Monday
    month: np.ndarray  # 0 = January
    weight: np.ndarray  # expected share of activity, 0 on closed days
    cdf: np.ndarray
    next_open: np.ndarray  # index of the first open day >= i (len(dates) when none)
    in_season: np.ndarray  # bool, September to December


@dataclass(frozen=True)
class _Schedule:
    """All planned invoices, each group sorted by day."""

    cust_day: np.ndarray
    cust_customer: np.ndarray
    cust_size: np.ndarray
    cust_returned: np.ndarray  # lines of the invoice that will come back (0 for most)
    cust_copies: np.ndarray  # (invoices, 2): lines keyed twice, and of those lines keyed three times
    guest_day: np.ndarray
    guest_size: np.ndarray
    guest_copies: np.ndarray
    write_off_day: np.ndarray
    single_day: np.ndarray
    single_kind: np.ndarray  # index into _SINGLES
    single_cancelled: np.ndarray  # bool, a "C" invoice
    single_customer: np.ndarray  # customer index, -1 for none


@dataclass(frozen=True)
class _Single:
    """A service code booked on its own one-line invoice."""

    code: str
    description: str
    per_real_sheet: float  # expected lines per 525,461 lines
    cancelled_share: float
    guest_share: float
    price_median: float
    price_sigma: float
    quantity: int


_SINGLES = (
    _Single("M", "Manual", 850, 0.35, 0.24, 60.0, 1.6, 1),
    _Single("D", "Discount", 100, 0.95, 0.03, 17.0, 1.3, 1),
    _Single("ADJUST", "Adjustment", 67, 0.46, 0.09, 49.0, 1.1, 1),
    _Single("BANK CHARGES", "Bank Charges", 65, 0.65, 0.60, 20.0, 0.5, 1),
    _Single("S", "SAMPLES", 41, 0.98, 1.0, 40.0, 1.2, 1),
    _Single("AMAZONFEE", "AMAZON FEE", 9, 0.78, 1.0, 6700.0, 0.5, 1),
    _Single("TEST001", "This is a test product.", 15, 0.27, 0.0, 4.5, 0.0, 5),
    _Single("TEST002", "This is a test product.", 2, 0.0, 0.0, 1.0, 0.0, 1),
    _Single("B", "Adjust bad debt", 3, 0.0, 1.0, -45000.0, 0.15, 1),
)
_MANUAL, _ADJUST, _BAD_DEBT = 0, 2, len(_SINGLES) - 1


def generate_invoices(
    n_lines: int = 100_000, *, random_state: int = 42, chunk_lines: int = 250_000
) -> Iterator[pd.DataFrame]:
    """Stream synthetic invoice lines in the raw UCI layout, ordered by ``InvoiceDate``.

    The stream spans 2009-12-01 to 2011-12-09 like the full UCI dataset whatever ``n_lines`` is: the size
    changes how many customers, invoices and products there are, not the dates. Customers scale with
    ``n_lines`` (about 4,383 per 525k lines, as in the real 2009-2010 sheet) and keep the real
    invoices-per-customer distribution; the catalogue grows sublinearly (at least 1,500 products).

    Args:
        n_lines: Approximate number of lines to generate (at least 1,000). The total lands within 1%
            (within 0.4% in practice from 5,000 lines).
        random_state: Seed of the ``numpy`` generator; the same seed and size give the same lines.
        chunk_lines: Rows per yielded frame; only the last frame is shorter. The concatenated stream does
            not depend on it.

    Returns:
        An iterator of DataFrames with columns ``COLUMNS`` and the dtypes of the real parquet
        (``Invoice``, ``StockCode`` and ``Country`` as str, ``Description`` object with None, ``Quantity``
        int64, ``InvoiceDate`` datetime64[ns], ``Price`` float64, ``Customer ID`` float64 with NaN for
        guests). Row indexes run on across chunks.

    Raises:
        ValueError: If ``n_lines`` < 1,000 or ``chunk_lines`` < 1.
    """
    if n_lines < 1_000:
        raise ValueError(f"n_lines must be at least 1000, got {n_lines}")
    if chunk_lines < 1:
        raise ValueError(f"chunk_lines must be positive, got {chunk_lines}")
    return _stream(int(n_lines), random_state=random_state, chunk_lines=int(chunk_lines))


def generate_frame(n_lines: int = 100_000, *, random_state: int = 42) -> pd.DataFrame:
    """Generate synthetic invoice lines as one DataFrame (convenient for small sizes).

    Args:
        n_lines: Approximate number of lines (see ``generate_invoices``).
        random_state: Seed of the ``numpy`` generator.

    Returns:
        The concatenation of ``generate_invoices(n_lines, random_state=random_state)``.
    """
    chunks = list(generate_invoices(n_lines, random_state=random_state, chunk_lines=max(n_lines, 1_000)))
    return pd.concat(chunks, ignore_index=True) if len(chunks) != 1 else chunks[0]


def _stream(n_lines: int, *, random_state: int, chunk_lines: int) -> Iterator[pd.DataFrame]:
    """Generate block after block of days and cut the result into chunks (see the module docstring)."""
    rng = np.random.default_rng(random_state)
    scale = n_lines / _REAL_LINES
    calendar = _build_calendar()
    catalogue = _build_catalogue(rng, n_products=_catalogue_size(n_lines), n_days=len(calendar.dates))
    customers = _build_customers(
        rng, n_customers=max(20, round(_REAL_CUSTOMERS * scale)), catalogue=catalogue
    )
    schedule = _build_schedule(rng, n_lines=n_lines, calendar=calendar, customers=customers)
    generator = _BlockGenerator(rng, calendar=calendar, catalogue=catalogue, customers=customers)

    # Days are generated in blocks of ~_BLOCK_LINES lines to amortise numpy's per-call overhead. The block
    # length depends on n_lines only, never on chunk_lines, which keeps the stream chunk-independent.
    n_days = len(calendar.dates)
    block_days = int(np.clip(round(_BLOCK_LINES / (n_lines / np.count_nonzero(calendar.weight))), 1, 28))
    edges = np.arange(0, n_days + block_days, block_days).clip(max=n_days)
    bounds = {
        name: np.searchsorted(getattr(schedule, f"{name}_day"), edges)
        for name in ("cust", "guest", "write_off", "single")
    }
    buffer: list[dict[str, np.ndarray]] = []
    buffered = 0
    emitted = 0
    for b in range(len(edges) - 1):
        days = range(int(edges[b]), int(edges[b + 1]))
        if len(days) == 0:
            continue
        lines = generator.generate(
            days, schedule, {name: slice(e[b], e[b + 1]) for name, e in bounds.items()}
        )
        buffer.append(lines)
        buffered += len(lines["Quantity"])
        while buffered >= chunk_lines:
            merged = {col: np.concatenate([part[col] for part in buffer]) for col in buffer[0]}
            yield _frame({col: values[:chunk_lines] for col, values in merged.items()}, start=emitted)
            emitted += chunk_lines
            buffer = [{col: values[chunk_lines:] for col, values in merged.items()}]
            buffered -= chunk_lines
    if buffered:
        merged = {col: np.concatenate([part[col] for part in buffer]) for col in buffer[0]}
        yield _frame(merged, start=emitted)


def _frame(columns: dict[str, np.ndarray], *, start: int) -> pd.DataFrame:
    """Assemble one chunk with the raw column names and dtypes."""
    n = len(columns["Quantity"])
    frame = pd.DataFrame(
        {
            "Invoice": columns["Invoice"],
            "StockCode": columns["StockCode"],
            "Description": columns["Description"],
            "Quantity": columns["Quantity"].astype(np.int64),
            "InvoiceDate": columns["InvoiceDate"].astype("datetime64[ns]"),
            "Price": columns["Price"].astype(np.float64),
            "Customer ID": columns["Customer ID"].astype(np.float64),
            "Country": columns["Country"],
        },
        index=pd.RangeIndex(start, start + n),
    )
    return frame


def _catalogue_size(n_lines: int) -> int:
    """Products in the catalogue: ~4,000 at the real sheet's size, growing sublinearly, 1,500 to 8,000."""
    return int(np.clip(round(4_000 * (n_lines / _REAL_LINES) ** 0.3), 1_500, 8_000))


def _stochastic_round(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Round to an integer up or down at random so that the expectation is kept."""
    floor = np.floor(values)
    return (floor + (rng.random(values.shape) < values - floor)).astype(np.int64)


def _build_calendar() -> _Calendar:
    """Trading days with their seasonal weight and the next-open-day lookup."""
    dates = np.arange(_START, _END + np.timedelta64(1, "D"))
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    christmas = ((month == 11) & (day_of_month >= 24)) | ((month == 0) & (day_of_month <= 3))
    closed = (weekday == 5) | christmas | np.isin(dates, _HOLIDAYS)
    weight = np.where(closed, 0.0, _MONTH_WEIGHT[month] * _WEEKDAY_WEIGHT[weekday])
    weight = weight / weight.sum()
    cdf = np.cumsum(weight)
    cdf[-1] = 1.0
    open_index = np.flatnonzero(~closed)
    next_open = open_index[
        np.minimum(np.searchsorted(open_index, np.arange(len(dates))), len(open_index) - 1)
    ]
    next_open = np.where(np.arange(len(dates)) > open_index[-1], len(dates), next_open)
    return _Calendar(dates, weekday, month, weight, cdf, next_open, month >= 8)


def _snap_price(values: np.ndarray) -> np.ndarray:
    """Nearest shop price point (in log space)."""
    logs = np.log(_PRICE_POINTS)
    pos = np.clip(np.searchsorted(logs, np.log(values)), 1, len(logs) - 1)
    lower_closer = np.log(values) - logs[pos - 1] < logs[pos] - np.log(values)
    return _PRICE_POINTS[np.where(lower_closer, pos - 1, pos)]


def _build_catalogue(rng: np.random.Generator, *, n_products: int, n_days: int) -> _Catalogue:
    """Draw themed product families, their codes, descriptions, prices, packs and popularity."""
    sizes: list[int] = [len(anchor[1]) for anchor in _ANCHORS]
    size_choices = np.arange(1, _MAX_FAMILY + 1)
    size_p = np.array([0.20, 0.10, 0.16, 0.14, 0.11, 0.09, 0.06, 0.05, 0.03, 0.025, 0.015, 0.02])
    while sum(sizes) < n_products:
        sizes.extend(rng.choice(size_choices, size=64, p=size_p / size_p.sum()).tolist())
    sizes_arr = np.array(sizes)
    sizes_arr = sizes_arr[: np.searchsorted(np.cumsum(sizes_arr), n_products) + 1]
    n_families = len(sizes_arr)
    n_anchor = len(_ANCHORS)

    descriptions, alt_descriptions, suffix_family = _describe_families(rng, sizes_arr)
    n = len(descriptions)
    family_of = np.repeat(np.arange(n_families), sizes_arr)
    slot = np.arange(n) - np.repeat(np.cumsum(sizes_arr) - sizes_arr, sizes_arr)

    codes, codes_lower, has_suffix = _stock_codes(rng, sizes_arr, suffix_family)

    # Popularity: anchors first, then a heavy tail (log-normal family weights); variant shares are uneven.
    family_weight = np.exp(rng.normal(0.0, _FAMILY_SIGMA, n_families))
    # Anchors get the expected weights of the top ranks (not the sampled ones) so the classic rules have
    # the same support whatever the seed.
    top_ranks = special.ndtri(1.0 - (np.arange(n_anchor) + 0.5) / n_families)
    family_weight[:n_anchor] = np.exp(_FAMILY_SIGMA * top_ranks) * _ANCHOR_BOOST
    variant_share = np.exp(rng.normal(0.0, 0.6, n))
    # Small families (a teacup in three colours) are bought together often; in big ones (twenty lunch-bag
    # designs) a customer picks a couple, so cohesion shrinks with size and few large itemsets are frequent.
    cohesion = rng.beta(1.0, 3.0, n_families) * np.minimum(1.0, 2.5 / np.maximum(sizes_arr - 1, 1))
    cohesion[:n_anchor] = [anchor[2] for anchor in _ANCHORS]
    seasonal = np.array(
        [
            any(word in str(descriptions[i]) for word in _SEASONAL_WORDS)
            for i in np.cumsum(sizes_arr) - sizes_arr
        ]
    )
    season_factor = np.stack([np.where(seasonal, 0.25, 1.0), np.where(seasonal, 4.0, 1.0)])
    # Favourites follow popularity; exploration (trade customers' new families, dotcom guests' orders)
    # browses the whole range with a flatter popularity, so big orders do not all hold the same goods.
    audience_weight = np.stack(
        [family_weight, family_weight ** _EXPLORE_FLATTENING[0], family_weight ** _EXPLORE_FLATTENING[1]]
    )
    family_cdf = np.cumsum(audience_weight[:, None, :] * season_factor[None, :, :], axis=2)
    family_cdf /= family_cdf[:, :, -1:]

    members = np.full((n_families, _MAX_FAMILY), -1, dtype=np.int64)
    members[family_of, slot] = np.arange(n)
    variant_weight = np.zeros((n_families, _MAX_FAMILY))
    variant_weight[family_of, slot] = variant_share
    product_weight = (
        family_weight[family_of] * variant_share / np.bincount(family_of, variant_share)[family_of]
    )
    product_cdf = np.cumsum(product_weight) / product_weight.sum()

    # Prices: colour variants share the family price; theme families price each item. Best sellers tend
    # to be cheap (correlation ~0.35 between popularity and cheapness), which also keeps line-level
    # price quantiles from hinging on the price of a few popular families.
    cheapness = -(np.log(family_weight) - np.log(family_weight).mean()) / np.log(family_weight).std()
    family_u = special.ndtr(0.35 * cheapness + np.sqrt(1 - 0.35**2) * rng.standard_normal(n_families))
    own_u = special.ndtr(0.35 * cheapness[family_of] + np.sqrt(1 - 0.35**2) * rng.standard_normal(n))
    family_price = np.exp(np.interp(family_u, *_PRICE_QUANTILES))
    own_price = np.exp(np.interp(own_u, *_PRICE_QUANTILES))
    price = _snap_price(
        np.where(suffix_family[family_of] | (rng.random(n) < 0.5), family_price[family_of], own_price)
    )
    changes = rng.random(n) < 0.12
    price_after = np.where(changes, _snap_price(price * rng.uniform(1.08, 1.3, n)), price)
    price_change_day = np.where(changes, rng.integers(60, n_days - 30, n), n_days + 1)
    bulk_factor = rng.choice([0.85, 0.86, 0.88], size=n)
    dotcom_factor = np.round(rng.normal(2.0, 0.04, n), 3)
    pack = _pack_sizes(rng, price)

    has_alt = ~pd.isna(alt_descriptions)
    alt_from_day = np.where(has_alt, rng.integers(30, n_days - 30, n), n_days + 1)
    alt = np.where(has_alt, alt_descriptions, descriptions)
    return _Catalogue(
        stock_code=codes,
        stock_code_lower=codes_lower,
        description=descriptions,
        alt_description=alt,
        alt_from_day=alt_from_day,
        price=price,
        price_after=price_after,
        price_change_day=price_change_day,
        bulk_factor=bulk_factor,
        dotcom_factor=dotcom_factor,
        pack=pack,
        has_suffix=has_suffix,
        family_members=members,
        family_size=sizes_arr,
        variant_weight=variant_weight,
        cohesion=cohesion,
        family_weight=family_weight,
        family_seasonal=seasonal,
        family_cdf=family_cdf,
        product_cdf=product_cdf,
    )


def _pack_sizes(rng: np.random.Generator, price: np.ndarray) -> np.ndarray:
    """Trade pack size per product: cheap goods come by the dozen, expensive ones singly."""
    # Rows: price < 1, 1-3, 3-8, >= 8; columns follow _PACK_SIZES.
    table = np.array(
        [
            [0.02, 0.02, 0.02, 0.04, 0.10, 0.04, 0.16, 0.34, 0.02, 0.16, 0.04, 0.04],
            [0.04, 0.06, 0.04, 0.10, 0.30, 0.08, 0.08, 0.24, 0.01, 0.04, 0.01, 0.00],
            [0.16, 0.24, 0.08, 0.22, 0.18, 0.06, 0.01, 0.05, 0.00, 0.00, 0.00, 0.00],
            [0.50, 0.26, 0.06, 0.14, 0.04, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00],
        ]
    )
    band = np.searchsorted([1.0, 3.0, 8.0], price, side="right")
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    choice = (rng.random(len(price))[:, None] > cdf[band]).sum(axis=1)
    return _PACK_SIZES[np.minimum(choice, len(_PACK_SIZES) - 1)]


def _describe_families(
    rng: np.random.Generator, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique upper-case descriptions per product, an alternative wording for some, and suffix families.

    Returns:
        Product descriptions (object), alternative descriptions (object, None when the product keeps one
        wording), and per family whether variants share one base code with letter suffixes.
    """
    used: set[str] = set()
    main: list[str] = []
    alt: list[str | None] = []
    suffix_family = np.zeros(len(sizes), dtype=bool)

    def add(name: str, reordered: str) -> None:
        # About a fifth of the descriptions carry a trailing space, as in the real export.
        text = name + " " if rng.random() < 0.19 else name
        main.append(text)
        used.add(name)
        if rng.random() < 0.12:
            if rng.random() < 0.6 and reordered != name:
                alt.append(reordered)
            elif " AND " in name:
                alt.append(name.replace(" AND ", " & "))
            else:
                alt.append(text.strip() if text != name else name + " ")
        else:
            alt.append(None)

    for f, size in enumerate(sizes):
        if f < len(_ANCHORS):
            item, variants, _, suffix, variant_first = _ANCHORS[f]
            suffix_family[f] = suffix
            for variant in variants:
                name = f"{variant} {item}" if variant_first else f"{item} {variant}"
                add(name, f"{item} {variant}" if variant_first else f"{variant} {item}")
            continue
        for _ in range(200):
            colour = size > 1 and rng.random() < 0.5
            if colour:
                base = f"{_MATERIALS[rng.integers(len(_MATERIALS))]} {_ITEMS[rng.integers(len(_ITEMS))]}"
                words = rng.choice(len(_VARIANTS), size=min(size, len(_VARIANTS)), replace=False)
                parts = [_VARIANTS[w] for w in words]
            else:
                base = _THEMES[rng.integers(len(_THEMES))]
                words = rng.choice(len(_ITEMS), size=size, replace=False)
                parts = [_ITEMS[w] for w in words]
            first = rng.random() < 0.5
            names = [f"{p} {base}" if first else f"{base} {p}" for p in parts]
            if size == 1 and rng.random() < 0.5:
                names = [f"{_MATERIALS[rng.integers(len(_MATERIALS))]} {names[0]}"]
            if len(set(names)) == size and not used.intersection(names):
                break
        else:
            names = [f"{name} {_MATERIALS[rng.integers(len(_MATERIALS))]} {f}" for name in names]
        suffix_family[f] = colour and rng.random() < 0.3
        for part, name in zip(parts, names, strict=False):
            add(name, f"{base} {part}" if first else f"{part} {base}")
    return np.array(main, dtype=object), np.array(alt, dtype=object), suffix_family


def _stock_codes(
    rng: np.random.Generator, sizes: np.ndarray, suffix_family: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five-digit codes: suffix families share one base with letters A, B, ...; others take close codes.

    Returns:
        Upper-case codes, the lowercase-suffix spelling of each code, and whether each code has a suffix.
    """
    n_bases = int(np.where(suffix_family, 1, sizes).sum())
    # Real codes crowd into 20000-23999, then the 84000s/85000s, with a scatter elsewhere.
    ranges = [
        (20000, 24000, 0.55),
        (84000, 86000, 0.12),
        (10000, 20000, 0.08),
        (35000, 48000, 0.1),
        (70000, 91000, 0.15),
    ]
    pool = np.concatenate([np.arange(lo, hi) for lo, hi, _ in ranges])
    p = np.concatenate([np.full(hi - lo, w / (hi - lo)) for lo, hi, w in ranges])
    bases = np.sort(rng.choice(pool, size=n_bases, replace=False, p=p / p.sum()))
    # Families take consecutive runs of the sorted bases, in a random order, so variants get close codes.
    need = np.where(suffix_family, 1, sizes)
    order = rng.permutation(len(sizes))
    start = np.empty(len(sizes), dtype=np.int64)
    start[order] = np.cumsum(need[order]) - need[order]
    letters = np.array(list("ABCDEFGHJKLMNPRSTW"))
    codes, lower, suffixed = [], [], []
    for f, size in enumerate(sizes):
        if suffix_family[f]:
            for k in range(size):
                codes.append(f"{bases[start[f]]}{letters[k]}")
                lower.append(f"{bases[start[f]]}{letters[k].lower()}")
                suffixed.append(True)
        else:
            for k in range(size):
                code = str(bases[start[f] + k])
                codes.append(code)
                lower.append(code)
                suffixed.append(False)
    return np.array(codes, dtype=object), np.array(lower, dtype=object), np.array(suffixed)


def _build_customers(rng: np.random.Generator, *, n_customers: int, catalogue: _Catalogue) -> _Customers:
    """Customer table: ids from 12346 like the real ones, countries, habits and favourite families."""
    # The real ids fill 12346-18287; beyond ~5,900 customers (about 700k lines) the range extends upwards.
    slots = max(5_942, n_customers)
    customer_id = (12_346 + np.sort(rng.choice(slots, size=n_customers, replace=False))).astype(np.float64)
    non_uk = rng.random(n_customers) < _NON_UK_CUSTOMER_SHARE
    weights = np.array(list(_COUNTRIES.values()))
    country = np.where(non_uk, 1 + rng.choice(len(weights), size=n_customers, p=weights / weights.sum()), 0)
    # 1 + Poisson(log-normal rate) reproduces the real invoices per customer: quartiles 1/2/5, p90 9,
    # p99 31, a third buying once.
    n_invoices = np.minimum(1 + rng.poisson(np.exp(rng.normal(0.3, 1.35, n_customers))), 205)

    # Favourite families: drawn by popularity without repeats, Zipf-weighted by rank; more for big buyers.
    n_fav = np.clip(
        np.round(np.exp(rng.normal(1.8, 0.5, n_customers)) * (1.0 + 0.5 * np.log1p(n_invoices))),
        2,
        _MAX_FAVOURITES,
    )
    favourites = np.searchsorted(
        catalogue.family_cdf[0, 0], rng.random((n_customers, _MAX_FAVOURITES)), side="right"
    )
    favourites = np.minimum(favourites, len(catalogue.family_size) - 1).astype(np.int32)
    order = np.argsort(favourites, axis=1, kind="stable")
    sorted_fav = np.take_along_axis(favourites, order, axis=1)
    repeat_sorted = np.zeros_like(sorted_fav, dtype=bool)
    repeat_sorted[:, 1:] = sorted_fav[:, 1:] == sorted_fav[:, :-1]
    repeat = np.zeros_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    rank = np.arange(_MAX_FAVOURITES)[None, :]
    weight = np.where(repeat | (rank >= n_fav[:, None]), 0.0, 1.0 / (rank + 1.0) ** 0.4)
    favourite_cdf = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
    favourite_cdf[:, -1] = 1.0
    return _Customers(
        customer_id=customer_id,
        country=country,
        n_invoices=n_invoices,
        favourites=favourites,
        favourite_cdf=favourite_cdf,
        p_favourite=rng.beta(6.0, 4.0, n_customers),
        unit_share=rng.beta(1.6, 2.0, n_customers),
        volume=np.exp(rng.normal(0.0, 0.35, n_customers)),
        return_rate=np.minimum(rng.gamma(1.2, 0.2, n_customers), 0.9),
    )


def _plan_copies(rng: np.random.Generator, size: np.ndarray, *, share: float) -> np.ndarray:
    """Plan exact duplicates: ``share`` of the invoices had some lines keyed twice.

    Args:
        rng: Random generator.
        size: Planned lines per invoice.
        share: Probability that an invoice has duplicated lines.

    Returns:
        Per invoice, the number of lines keyed twice (one in seven of the invoice's lines when it has
        any) and, among those, the number keyed a third time (6%), shape (invoices, 2).
    """
    twice = np.where(rng.random(len(size)) < share, rng.binomial(size, 0.135), 0)
    return np.stack([twice, rng.binomial(twice, 0.06)], axis=1).astype(np.int64)


def _build_schedule(
    rng: np.random.Generator, *, n_lines: int, calendar: _Calendar, customers: _Customers
) -> _Schedule:
    """Plan every invoice: day, customer and number of product lines.

    Line budgets follow the real sheet: ~76% of lines are products on registered customers' invoices,
    ~19.6% products on guest (dotcom) invoices; the rest are returns, duplicates, write-offs and service
    lines. Returns and duplicates are planned per invoice here, and the customers' product budget gives
    way to them, so the total stays within a fraction of a per cent of ``n_lines``.
    """
    scale = n_lines / _REAL_LINES
    n_customers = len(customers.customer_id)
    cdf = calendar.cdf

    # Each customer is active in a window of the (seasonally weighted) calendar, one-off buyers at a
    # point. Positions live in calendar-CDF space; windows that stick out of the span are folded back in,
    # which keeps the overall density uniform there, i.e. the calendar's seasonality across the stream.
    length = np.where(customers.n_invoices > 1, 0.04 + 0.96 * rng.beta(1.3, 1.2, n_customers), 0.0)
    centre = rng.random(n_customers)
    owner = np.repeat(np.arange(n_customers), customers.n_invoices)
    position = centre[owner] + length[owner] * (rng.random(len(owner)) - 0.5)
    position = np.abs(np.where(position > 1.0, 2.0 - position, position))
    cust_day = np.minimum(np.searchsorted(cdf, position, side="right"), len(cdf) - 1)

    # Guest (dotcom) invoices until their budget is used: a few lines mostly, and a quarter of big web
    # orders of ~150 lines (real quartiles 2/10/49, p90 190, p99 510). The last invoice takes up what is
    # left, so guest lines are exact even at small sizes where one web order is a sizeable share.
    guest_budget = round(_GUEST_SHARE * n_lines)
    n_draws = int(guest_budget / 20) + 50
    big_order = rng.random(n_draws) < 0.25
    log_size = np.where(big_order, rng.normal(5.0, 0.7, n_draws), rng.normal(1.4, 1.6, n_draws))
    guest_size = np.clip(np.round(np.exp(log_size)), 1, _MAX_LINES_PER_INVOICE).astype(np.int64)
    filled = np.cumsum(guest_size)
    n_guest = int(np.searchsorted(filled, guest_budget))
    guest_size = guest_size[: n_guest + 1]
    guest_size[-1] = max(1, guest_budget - (int(filled[n_guest - 1]) if n_guest else 0))
    guest_day = np.searchsorted(cdf, rng.random(len(guest_size)), side="right")
    guest_copies = _plan_copies(rng, guest_size, share=0.02)

    # Basket size: a customer-level typical size and a skewed invoice-level spread around it (customer
    # invoices in the real sheet: quartiles 6/15/28, p90 48, p99 107).
    typical = rng.normal(2.68, 0.45, n_customers) + np.where(customers.country > 0, 0.1, 0.0)
    z = rng.standard_normal(len(owner))
    raw_size = np.exp(typical[owner] + np.where(z > 0, 0.65 * z, 1.4 * z))
    draft = np.clip(
        np.round(raw_size * _CUSTOMER_SHARE * n_lines / raw_size.sum()), 1, _MAX_LINES_PER_INVOICE
    )
    draft = draft.astype(np.int64)
    # Returns and keying duplicates are planned here rather than drawn line by line, so that the product
    # budget can make room for exactly as many as there will be: the total then lands on n_lines.
    returned = rng.random(len(owner)) < customers.return_rate[owner]
    # Lines per return (real C invoices: quartiles 1/1/2, p90 4, p99 15).
    n_back = rng.geometric(0.5, len(owner)) + (rng.random(len(owner)) < 0.06) * rng.integers(
        2, 15, len(owner)
    )
    cust_returned = np.where(returned, np.minimum(n_back, draft), 0).astype(np.int64)
    cust_copies = _plan_copies(rng, draft, share=0.12)
    budget = _CUSTOMER_SHARE * n_lines - (
        cust_returned.sum() + cust_copies.sum() + guest_copies.sum() - _EXPECTED_EXTRA * n_lines
    )
    cust_size = np.clip(_stochastic_round(rng, raw_size * budget / raw_size.sum()), 1, _MAX_LINES_PER_INVOICE)

    write_off_day = np.searchsorted(cdf, rng.random(rng.poisson(0.00698 * n_lines)), side="right")

    kinds, cancelled, customer = [], [], []
    for k, single in enumerate(_SINGLES):
        count = rng.poisson(single.per_real_sheet * scale)
        if k == _BAD_DEBT:
            count = max(2, round(single.per_real_sheet * scale))  # always a few bad-debt adjustments
        kinds.append(np.full(count, k))
        cancelled.append(rng.random(count) < single.cancelled_share)
        who = rng.choice(n_customers, size=count, p=customers.n_invoices / customers.n_invoices.sum())
        customer.append(np.where(rng.random(count) < single.guest_share, -1, who))
    single_kind = np.concatenate(kinds)
    single_day = np.searchsorted(cdf, rng.random(len(single_kind)), side="right")

    def by_day(day: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
        order = np.argsort(day, kind="stable")
        return [day[order], *(column[order] for column in columns)]

    cust_day, cust_customer, cust_size, cust_returned, cust_copies = by_day(
        cust_day, owner, cust_size, cust_returned, cust_copies
    )
    guest_day, guest_size, guest_copies = by_day(guest_day, guest_size, guest_copies)
    single_day, single_kind, single_cancelled, single_customer = by_day(
        single_day, single_kind, np.concatenate(cancelled), np.concatenate(customer)
    )
    return _Schedule(
        cust_day=cust_day,
        cust_customer=cust_customer,
        cust_size=cust_size,
        cust_returned=cust_returned,
        cust_copies=cust_copies,
        guest_day=guest_day,
        guest_size=guest_size,
        guest_copies=guest_copies,
        write_off_day=np.sort(write_off_day),
        single_day=single_day,
        single_kind=single_kind,
        single_cancelled=single_cancelled,
        single_customer=single_customer,
    )


def _random_rank(
    rng: np.random.Generator, group: np.ndarray, n_groups: int, *, first: np.ndarray | None = None
) -> np.ndarray:
    """Random order of the elements within each group (0, 1, ...), optionally putting some first.

    Args:
        rng: Random generator.
        group: Group id per element, in 0..n_groups-1.
        n_groups: Number of groups.
        first: Elements ranked before the others of their group.

    Returns:
        The rank of each element within its group.
    """
    score = rng.random(len(group)) - (0.0 if first is None else first.astype(np.float64))
    order = np.lexsort((score, group))
    start = np.searchsorted(group[order], np.arange(n_groups))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - start[group[order]]
    return rank


class _BlockBuilder:
    """Collects one block's invoices and lines, then orders and numbers them."""

    def __init__(self) -> None:
        self.inv_time: list[np.ndarray] = []
        self.inv_prefix: list[np.ndarray] = []  # 0 = sale, 1 = "C", 2 = "A"
        self.inv_customer: list[np.ndarray] = []  # float id, NaN for guests
        self.inv_country: list[np.ndarray] = []
        self.lines: dict[str, list[np.ndarray]] = {
            k: [] for k in ("inv", "seq", "code", "desc", "qty", "price")
        }
        self.n_invoices = 0

    def add_invoices(
        self, time: np.ndarray, prefix: np.ndarray | int, customer: np.ndarray, country: np.ndarray
    ) -> np.ndarray:
        """Register invoices and return their block-local ids."""
        n = len(time)
        self.inv_time.append(time)
        self.inv_prefix.append(np.broadcast_to(np.asarray(prefix, dtype=np.int8), (n,)))
        self.inv_customer.append(customer.astype(np.float64))
        self.inv_country.append(country)
        ids = np.arange(self.n_invoices, self.n_invoices + n)
        self.n_invoices += n
        return ids

    def add_lines(
        self,
        inv: np.ndarray,
        seq: np.ndarray,
        code: np.ndarray,
        desc: np.ndarray,
        qty: np.ndarray,
        price: np.ndarray,
    ) -> None:
        """Append lines given as arrays of one length (block-local invoice id, order within it, columns)."""
        if len(inv) == 0:
            return
        columns = (inv, seq, code, desc, qty, price)
        for key, value in zip(("inv", "seq", "code", "desc", "qty", "price"), columns, strict=True):
            self.lines[key].append(value)

    def finish(self, first_number: int) -> tuple[dict[str, np.ndarray], int]:
        """Order invoices by time, number them from ``first_number`` and return the block's raw columns."""
        if not self.lines["inv"]:  # a block of closed days
            empty = {
                "Quantity": np.zeros(0, dtype=np.int64),
                "InvoiceDate": np.zeros(0, dtype="datetime64[ns]"),
                "Price": np.zeros(0),
                "Customer ID": np.zeros(0),
            }
            return {col: empty.get(col, np.zeros(0, dtype=object)) for col in COLUMNS}, first_number
        time = np.concatenate(self.inv_time)
        prefix = np.concatenate(self.inv_prefix)
        customer = np.concatenate(self.inv_customer)
        country = np.concatenate(self.inv_country)
        order = np.argsort(time, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        inv = np.concatenate(self.lines["inv"])
        seq = np.concatenate(self.lines["seq"])
        line_order = np.lexsort((seq, rank[inv]))
        inv = inv[line_order]
        marks = np.array(["", "C", "A"], dtype=object)
        names = np.array(
            [f"{marks[prefix[i]]}{first_number + rank[i]}" for i in range(len(rank))], dtype=object
        )
        columns = {
            "Invoice": names[inv],
            "StockCode": np.concatenate(self.lines["code"])[line_order],
            "Description": np.concatenate(self.lines["desc"])[line_order],
            "Quantity": np.concatenate(self.lines["qty"]).astype(np.int64)[line_order],
            "InvoiceDate": time[inv].astype("datetime64[ns]"),
            "Price": np.round(np.concatenate(self.lines["price"]).astype(np.float64)[line_order], 2),
            "Customer ID": customer[inv],
            "Country": _COUNTRY_NAMES[country[inv]],
        }
        return columns, first_number + len(rank)


class _BlockGenerator:
    """Generates blocks of consecutive days in order; holds the queue of returns waiting for their day."""

    def __init__(
        self, rng: np.random.Generator, *, calendar: _Calendar, catalogue: _Catalogue, customers: _Customers
    ) -> None:
        self.rng = rng
        self.calendar = calendar
        self.catalogue = catalogue
        self.customers = customers
        self.pending: dict[int, list[dict[str, np.ndarray]]] = {}
        self.next_number = _FIRST_INVOICE
        self.next_event = 0
        self.hour_cdf = np.cumsum(_HOUR_WEIGHT / _HOUR_WEIGHT.sum(axis=1, keepdims=True), axis=1)
        self.postage = np.array([_POSTAGE.get(str(name), 40.0) for name in _COUNTRY_NAMES])
        self.n_products = len(catalogue.stock_code)
        self.n_days = len(calendar.dates)
        self.midnight = calendar.dates.astype("datetime64[ns]").astype(np.int64)

    def times(self, day: np.ndarray) -> np.ndarray:
        """Invoice timestamps (ns since epoch) on the given days, hours drawn from the weekday's profile."""
        u = self.rng.random(len(day))
        hour = _FIRST_HOUR + (u[:, None] > self.hour_cdf[self.calendar.weekday[day]]).sum(axis=1)
        minute = hour * 60 + self.rng.integers(0, 60, len(day))
        return self.midnight[day] + minute * _NS_PER_MINUTE

    def generate(self, days: range, schedule: _Schedule, part: dict[str, slice]) -> dict[str, np.ndarray]:
        """All lines of the block of ``days`` in raw columns, ordered by time and invoice."""
        rng = self.rng
        cat = self.catalogue
        cust = self.customers
        builder = _BlockBuilder()
        season = self.calendar.in_season.astype(np.int64)

        # Registered customers' invoices.
        owner = schedule.cust_customer[part["cust"]]
        c_day = schedule.cust_day[part["cust"]]
        c_time = self.times(c_day)
        c_ids = builder.add_invoices(c_time, 0, cust.customer_id[owner], cust.country[owner])
        c_inv, c_product = self.basket_lines(owner, schedule.cust_size[part["cust"]], season[c_day])

        # Guest (dotcom) invoices: UK bar a few.
        g_size = schedule.guest_size[part["guest"]]
        g_day = schedule.guest_day[part["guest"]]
        n_guest = len(g_size)
        g_country = np.where(rng.random(n_guest) < 0.99, 0, rng.choice(_GUEST_ABROAD, size=n_guest))
        g_ids = builder.add_invoices(self.times(g_day), 0, np.full(n_guest, np.nan), g_country)
        g_inv, g_product = self.basket_lines(np.full(n_guest, -1), g_size, season[g_day])

        product = np.concatenate([c_product, g_product])
        inv = np.concatenate([c_ids[c_inv], g_ids[g_inv]])
        line_day = np.concatenate([c_day[c_inv], g_day[g_inv]])
        line_owner = np.concatenate([owner[c_inv], np.full(len(g_inv), -1)])
        qty, price = self.quantities_and_prices(product, line_owner, line_day)
        desc = np.where(
            cat.alt_from_day[product] <= line_day, cat.alt_description[product], cat.description[product]
        )
        # A few lines spell the letter suffix in lowercase (85123a), as in the real export.
        code = np.where(
            cat.has_suffix[product] & (rng.random(len(product)) < 0.018),
            cat.stock_code_lower[product],
            cat.stock_code[product],
        )

        # Trade invoices abroad pay postage (carriage to Ireland and the Channel Islands); a few carry PADS.
        c_country = cust.country[owner]
        n_cust = len(owner)
        carriage = (np.isin(c_country, _CARRIAGE_COUNTRIES) & (rng.random(n_cust) < 0.45)) | (
            (c_country == 0) & (rng.random(n_cust) < 0.0015)
        )
        postage = (c_country > 0) & ~carriage & (rng.random(n_cust) < 0.5)
        pads = rng.random(n_cust) < 0.0008
        n_post, n_carriage, n_pads = int(postage.sum()), int(carriage.sum()), int(pads.sum())
        post_qty = rng.choice([1, 2, 3, 4, 5], size=n_post, p=[0.3, 0.3, 0.2, 0.12, 0.08])
        post_price = self.postage[c_country[postage]]

        # Dotcom postage on most large guest orders, and the odd gift voucher (more in December).
        dot = (g_country == 0) & (rng.random(n_guest) < np.where(g_size >= 40, 0.98, 0.25))
        gift = rng.random(n_guest) < np.where(self.calendar.month[g_day] == 11, 0.09, 0.03)  # 11 = December
        n_dot, n_gift = int(dot.sum()), int(gift.sum())
        face = rng.choice(
            [10, 20, 30, 40, 50, 60, 70, 80, 90],
            size=n_gift,
            p=[0.15, 0.3, 0.25, 0.06, 0.08, 0.04, 0.04, 0.04, 0.04],
        )

        def const(value: str, n: int) -> np.ndarray:
            return np.full(n, value, dtype=object)

        s_inv = np.concatenate([c_ids[postage], c_ids[carriage], c_ids[pads], g_ids[dot], g_ids[gift]])
        s_code = np.concatenate(
            [
                const("POST", n_post),
                const("C2", n_carriage),
                const("PADS", n_pads),
                const("DOT", n_dot),
                np.array([f"gift_0001_{v}" for v in face], dtype=object),
            ]
        )
        s_desc = np.concatenate(
            [
                const("POSTAGE", n_post),
                const("CARRIAGE", n_carriage),
                const("PADS TO MATCH ALL CUSHIONS", n_pads),
                const("DOTCOM POSTAGE", n_dot),
                np.array([f"Dotcomgiftshop Gift Voucher £{v}.00" for v in face], dtype=object),
            ]
        )
        s_qty = np.concatenate(
            [
                post_qty,
                np.ones(n_carriage + n_pads + n_dot, dtype=np.int64),
                rng.choice([1, 1, 1, 2], size=n_gift),
            ]
        )
        s_price = np.concatenate(
            [
                post_price,
                np.full(n_carriage, 50.0),
                np.zeros(n_pads),
                np.round(g_size[dot] * rng.uniform(0.6, 1.6, n_dot) + 5.0, 2),
                np.round(face / 1.15, 2),
            ]
        )

        # Returns of registered customers' lines (products, and the postage that went with them).
        n_c_lines = len(c_inv)
        self.schedule_returns(
            inv_day=c_day,
            inv_time=c_time,
            n_back=schedule.cust_returned[part["cust"]],
            local_inv=np.concatenate([c_inv, np.flatnonzero(postage)]),
            owner=owner,
            code=np.concatenate([code[:n_c_lines], s_code[:n_post]]),
            desc=np.concatenate([desc[:n_c_lines], s_desc[:n_post]]),
            qty=np.concatenate([qty[:n_c_lines], post_qty]),
            price=np.concatenate([price[:n_c_lines], post_price]),
            is_postage=np.concatenate([np.zeros(n_c_lines, dtype=bool), np.ones(n_post, dtype=bool)]),
        )

        all_inv = np.concatenate([inv, s_inv])
        all_seq = np.arange(len(all_inv))
        # Exact duplicates as planned: random product lines of the invoice keyed twice, a few thrice.
        copies = np.concatenate([schedule.cust_copies[part["cust"]], schedule.guest_copies[part["guest"]]])
        rank = _random_rank(rng, inv, builder.n_invoices)
        repeat = np.ones(len(all_inv), dtype=np.int64)
        repeat[: len(inv)] += (rank < copies[inv, 0]).astype(np.int64) + (rank < copies[inv, 1])
        builder.add_lines(
            np.repeat(all_inv, repeat),
            np.repeat(all_seq, repeat),
            np.repeat(np.concatenate([code, s_code]), repeat),
            np.repeat(np.concatenate([desc, s_desc]), repeat),
            np.repeat(np.concatenate([qty, s_qty]), repeat),
            np.repeat(np.concatenate([price, s_price]), repeat),
        )

        self.add_write_offs(builder, schedule.write_off_day[part["write_off"]])
        self.add_singles(builder, schedule, part["single"])
        for d in days:
            self.add_due_returns(builder, d)
        columns, self.next_number = builder.finish(self.next_number)
        return columns

    def basket_lines(
        self, owner: np.ndarray, size: np.ndarray, season: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Products of each invoice: families from favourites or by popularity, one or more variants each.

        Args:
            owner: Customer index per invoice, -1 for guests.
            size: Target number of distinct products per invoice.
            season: Per invoice, 1 from September to December (Christmas families sell), else 0.

        Returns:
            Invoice position (0..len(owner)-1) and product index per line, grouped by invoice.
        """
        n_inv = len(owner)
        if n_inv == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # More family draws than lines are needed; extra draws are cut off below.
        slot_inv = np.repeat(np.arange(n_inv), 2 * size + 2)
        family = self.draw_families(owner[slot_inv], season[slot_inv], favourites=True)
        line_inv, product = self.distinct_lines(*self.variants(family, slot_inv), size)
        # A customer with few favourite families can run out of new products in a big order: top those
        # invoices up with families from the whole range.
        short = size - np.bincount(line_inv, minlength=n_inv)
        if short.any():
            extra_inv = np.repeat(np.arange(n_inv), np.where(short > 0, 2 * short + 2, 0))
            family = self.draw_families(owner[extra_inv], season[extra_inv], favourites=False)
            more_inv, more_product = self.variants(family, extra_inv)
            merged_inv = np.concatenate([line_inv, more_inv])
            order = np.argsort(merged_inv, kind="stable")
            line_inv, product = self.distinct_lines(
                merged_inv[order], np.concatenate([product, more_product])[order], size
            )
        return line_inv, product

    def draw_families(self, owner: np.ndarray, season: np.ndarray, *, favourites: bool) -> np.ndarray:
        """One product family per basket slot.

        Args:
            owner: Customer index per slot, -1 for guests.
            season: Per slot, 1 from September to December, else 0.
            favourites: Whether registered customers draw from their favourite families (with their
                ``p_favourite``) or only explore the range.

        Returns:
            Family index per slot.
        """
        rng = self.rng
        cat = self.catalogue
        cust = self.customers
        u = rng.random(len(owner))
        family = np.zeros(len(owner), dtype=np.int64)
        audience = 1 + (owner < 0).astype(np.int64)
        for a in (1, 2):
            for s in (0, 1):
                sel = np.flatnonzero((audience == a) & (season == s))
                family[sel] = np.searchsorted(cat.family_cdf[a, s], u[sel], side="right")
        family = np.minimum(family, len(cat.family_size) - 1)
        if not favourites:
            return family
        use_fav = (owner >= 0) & (rng.random(len(owner)) < cust.p_favourite[np.maximum(owner, 0)])
        fav_slots = np.flatnonzero(use_fav)
        who = owner[fav_slots]
        pick = (rng.random(len(fav_slots))[:, None] > cust.favourite_cdf[who]).sum(axis=1)
        fav_family = cust.favourites[who, pick]
        # Christmas favourites mostly wait for the season; the slot keeps its explored family instead.
        keep = (
            ~cat.family_seasonal[fav_family] | (season[fav_slots] == 1) | (rng.random(len(fav_slots)) < 0.25)
        )
        family[fav_slots[keep]] = fav_family[keep]
        return family

    def variants(self, family: np.ndarray, slot_inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Products of each drawn family: the first always, each other one with the family's cohesion.

        Which variants, by weighted sampling without replacement (exponential keys).

        Returns:
            Invoice position and product index per candidate line, in slot order.
        """
        rng = self.rng
        cat = self.catalogue
        n_variants = 1 + rng.binomial(cat.family_size[family] - 1, cat.cohesion[family])
        weight = cat.variant_weight[family]
        keys = rng.exponential(size=weight.shape) / np.where(weight > 0, weight, np.nan)
        order = np.argsort(np.nan_to_num(keys, nan=np.inf), axis=1)
        chosen = np.take_along_axis(cat.family_members[family], order, axis=1)
        product = chosen[np.arange(_MAX_FAMILY)[None, :] < n_variants[:, None]]
        return np.repeat(slot_inv, n_variants), product

    def distinct_lines(
        self, line_inv: np.ndarray, product: np.ndarray, size: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keep one line per product per invoice (duplicates come later, on purpose), at most ``size``.

        Args:
            line_inv: Invoice position per candidate line, grouped by invoice (non-decreasing).
            product: Product per candidate line.
            size: Target lines per invoice.

        Returns:
            The kept invoice positions and products, in candidate order.
        """
        key = line_inv * self.n_products + product
        by_key = np.argsort(key, kind="stable")
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[by_key][1:] != key[by_key][:-1]
        unique = np.zeros(len(key), dtype=bool)
        unique[by_key[first]] = True
        line_inv, product = line_inv[unique], product[unique]
        start = np.searchsorted(line_inv, np.arange(len(size)))
        rank = np.arange(len(line_inv)) - start[line_inv]
        keep = rank < size[line_inv]
        return line_inv[keep], product[keep]

    def quantities_and_prices(
        self, product: np.ndarray, owner: np.ndarray, day: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quantity and unit price per line: packs for trade, units for guests, bulk and dotcom prices."""
        rng = self.rng
        cat = self.catalogue
        cust = self.customers
        n = len(product)
        guest = owner < 0
        who = np.maximum(owner, 0)
        pack = cat.pack[product]
        units = rng.choice(
            [1, 2, 3, 4, 5, 6, 10, 12], size=n, p=[0.42, 0.26, 0.1, 0.1, 0.03, 0.04, 0.02, 0.03]
        )
        multiple = rng.choice(
            [1, 2, 3, 4, 6, 8, 10, 12, 20], size=n, p=[0.72, 0.15, 0.02, 0.05, 0.02, 0.015, 0.01, 0.01, 0.005]
        )
        volume = np.maximum(1, np.round(multiple * cust.volume[who]))
        # Expensive goods go by the unit whoever buys them.
        singles = (rng.random(n) < cust.unit_share[who]) | (cat.price[product] >= 15.0)
        trade = np.where(
            singles, np.minimum(units, np.where(cat.price[product] >= 15.0, 4, 12)), pack * volume
        )
        guest_qty = rng.choice([1, 2, 3, 4, 6, 12, 24], size=n, p=[0.55, 0.22, 0.08, 0.06, 0.03, 0.05, 0.01])
        qty = np.where(guest, guest_qty, trade).astype(np.int64)
        huge = (rng.random(n) < 0.002) & (cat.price[product] < 2.5)
        qty = np.where(huge, qty * rng.integers(5, 60, n), qty)

        base = np.where(day >= cat.price_change_day[product], cat.price_after[product], cat.price[product])
        bulk = ~guest & (qty >= 4 * pack) & (qty >= 12)
        price = np.where(
            guest, base * cat.dotcom_factor[product], np.where(bulk, base * cat.bulk_factor[product], base)
        )
        return qty, np.round(price, 2)

    def schedule_returns(
        self,
        *,
        inv_day: np.ndarray,
        inv_time: np.ndarray,
        n_back: np.ndarray,
        local_inv: np.ndarray,
        owner: np.ndarray,
        code: np.ndarray,
        desc: np.ndarray,
        qty: np.ndarray,
        price: np.ndarray,
        is_postage: np.ndarray,
    ) -> None:
        """Pick the planned returns of trade invoices and queue them for their day.

        Each returned line copies the purchase's stock code and price with a negative quantity no larger
        than what was bought. About a tenth come back the same day, the rest after days or weeks (real
        delays: median 9 days, 90th percentile 63).

        Args:
            inv_day: Day index per trade invoice.
            inv_time: Timestamp (ns) per trade invoice.
            n_back: Planned number of returned lines per trade invoice (0: nothing comes back).
            local_inv: Invoice position per candidate line.
            owner: Customer index per trade invoice.
            code: Stock code per candidate line.
            desc: Description per candidate line.
            qty: Quantity bought per candidate line.
            price: Unit price per candidate line.
            is_postage: Whether the candidate line is postage (returned with the goods more often).
        """
        rng = self.rng
        n_inv = len(owner)
        if n_inv == 0:
            return
        # Postage goes back with the goods more often than any single product line.
        rank = _random_rank(rng, local_inv, n_inv, first=is_postage & (rng.random(len(local_inv)) < 0.5))
        chosen = np.flatnonzero(rank < n_back[local_inv])
        if len(chosen) == 0:
            return
        event_inv = local_inv[chosen]
        full = rng.random(len(chosen)) < 0.6
        back = np.where(full, qty[chosen], 1 + np.floor(rng.random(len(chosen)) * qty[chosen])).astype(
            np.int64
        )

        # When: the same day a few hours later, or a log-normal number of days later on an open day.
        invoices = np.unique(event_inv)
        n_events = len(invoices)
        offset = rng.integers(5, 240, n_events) * _NS_PER_MINUTE
        same_time = inv_time[invoices] + offset
        same_day = (rng.random(n_events) < 0.1) & (
            (same_time - self.midnight[inv_day[invoices]]) < 21 * 60 * _NS_PER_MINUTE
        )
        delay = np.where(same_day, 0, np.maximum(1, np.round(np.exp(rng.normal(2.3, 1.1, n_events))))).astype(
            np.int64
        )
        target = inv_day[invoices] + np.minimum(delay, self.n_days)
        target = np.where(
            target < self.n_days, self.calendar.next_open[np.minimum(target, self.n_days - 1)], self.n_days
        )
        time = np.where(same_day, same_time, self.times(np.minimum(target, self.n_days - 1)))
        event = self.next_event + np.arange(n_events)
        self.next_event += n_events
        position = np.searchsorted(invoices, event_inv)
        line_target = target[position]
        # Returns that would come back after the data ends are never booked.
        for day in np.unique(line_target[line_target < self.n_days]):
            sel = line_target == day
            self.pending.setdefault(int(day), []).append(
                {
                    "event": event[position[sel]],
                    "time": time[position[sel]],
                    "customer": owner[event_inv[sel]],
                    "code": code[chosen[sel]],
                    "desc": desc[chosen[sel]],
                    "qty": -back[sel],
                    "price": price[chosen[sel]],
                }
            )

    def add_due_returns(self, builder: _BlockBuilder, d: int) -> None:
        """Book the returns whose day has come as "C" invoices, one per return event."""
        parts = self.pending.pop(d, [])
        if not parts:
            return
        lines = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        _, first, local = np.unique(lines["event"], return_index=True, return_inverse=True)
        who = lines["customer"][first]
        ids = builder.add_invoices(
            lines["time"][first], 1, self.customers.customer_id[who], self.customers.country[who]
        )
        builder.add_lines(
            ids[local], np.arange(len(local)), lines["code"], lines["desc"], lines["qty"], lines["price"]
        )

    def add_write_offs(self, builder: _BlockBuilder, day: np.ndarray) -> None:
        """Zero-price stock movements: one line, no customer, mostly no description or a lowercase note."""
        n = len(day)
        if n == 0:
            return
        rng = self.rng
        cat = self.catalogue
        ids = builder.add_invoices(self.times(day), 0, np.full(n, np.nan), np.zeros(n, dtype=np.int64))
        product = np.minimum(
            np.searchsorted(cat.product_cdf, rng.random(n), side="right"), self.n_products - 1
        )
        kind = rng.random(n)
        notes = _WRITE_OFF_NOTES[rng.integers(0, len(_WRITE_OFF_NOTES), n)]
        desc = np.where(kind < 0.8, None, np.where(kind < 0.9, notes, cat.description[product]))
        size = np.minimum(np.round(np.exp(rng.normal(2.3, 1.5, n))), 9_600).astype(np.int64)
        qty = np.where(rng.random(n) < 0.57, -size, size)
        builder.add_lines(ids, np.zeros(n, dtype=np.int64), cat.stock_code[product], desc, qty, np.zeros(n))

    def add_singles(self, builder: _BlockBuilder, schedule: _Schedule, part: slice) -> None:
        """Service codes on their own invoices: manual lines, discounts, fees, samples, bad debt."""
        kind = schedule.single_kind[part]
        n = len(kind)
        if n == 0:
            return
        rng = self.rng
        cust = self.customers
        cancelled = schedule.single_cancelled[part]
        who = schedule.single_customer[part]
        guest = who < 0
        prefix = np.where(kind == _BAD_DEBT, 2, cancelled.astype(np.int8))
        customer = np.where(guest, np.nan, cust.customer_id[np.maximum(who, 0)])
        country = np.where(guest, 0, cust.country[np.maximum(who, 0)])
        time = self.times(schedule.single_day[part])
        ids = builder.add_invoices(time, prefix, customer, country)
        median = np.array([s.price_median for s in _SINGLES])[kind]
        sigma = np.array([s.price_sigma for s in _SINGLES])[kind]
        price = np.round(np.clip(median * np.exp(sigma * rng.standard_normal(n)), -60_000.0, 25_000.0), 2)
        # Manual lines are either small product corrections (sometimes by the dozen) or one large amount.
        small_manual = (kind == _MANUAL) & (rng.random(n) < 0.4)
        price = np.where(small_manual, np.round(np.exp(rng.normal(0.3, 0.7, n)), 2), price)
        base_qty = np.array([s.quantity for s in _SINGLES])[kind]
        qty = np.where(small_manual, rng.choice([1, 1, 1, 2, 3, 12, 25], size=n), base_qty)
        qty = np.where(cancelled, -qty, qty)
        codes = np.array([s.code for s in _SINGLES], dtype=object)[kind]
        desc = np.array([s.description for s in _SINGLES], dtype=object)[kind]
        adjust = np.flatnonzero(kind == _ADJUST)
        if len(adjust):
            desc[adjust] = [f"Adjustment by john on {t:%d/%m/%Y %H}" for t in pd.to_datetime(time[adjust])]
        builder.add_lines(ids, np.zeros(n, dtype=np.int64), codes, desc, qty, price)
