"""Simulated NHS organisations with ODS codes: ICBs, sub-ICB locations (CCGs), PCNs, practices."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Real ICB codes and names with their NHS England region, so dashboards look familiar.
ICBS: tuple[tuple[str, str, str], ...] = (
    ("QHM", "NHS North East and North Cumbria ICB", "Y63"),
    ("QOQ", "NHS Humber and North Yorkshire ICB", "Y63"),
    ("QF7", "NHS South Yorkshire ICB", "Y63"),
    ("QWO", "NHS West Yorkshire ICB", "Y63"),
    ("QOP", "NHS Greater Manchester ICB", "Y62"),
    ("QE1", "NHS Lancashire and South Cumbria ICB", "Y62"),
    ("QYG", "NHS Cheshire and Merseyside ICB", "Y62"),
    ("QJ2", "NHS Derby and Derbyshire ICB", "Y60"),
    ("QT1", "NHS Nottingham and Nottinghamshire ICB", "Y60"),
    ("QK1", "NHS Leicester, Leicestershire and Rutland ICB", "Y60"),
    ("QJM", "NHS Lincolnshire ICB", "Y60"),
    ("QHL", "NHS Birmingham and Solihull ICB", "Y60"),
    ("QUA", "NHS Black Country ICB", "Y60"),
    ("QWU", "NHS Coventry and Warwickshire ICB", "Y60"),
    ("QNC", "NHS Staffordshire and Stoke-on-Trent ICB", "Y60"),
    ("QMM", "NHS Norfolk and Waveney ICB", "Y61"),
    ("QJG", "NHS Suffolk and North East Essex ICB", "Y61"),
    ("QUE", "NHS Cambridgeshire and Peterborough ICB", "Y61"),
    ("QM7", "NHS Hertfordshire and West Essex ICB", "Y61"),
    ("QH8", "NHS Mid and South Essex ICB", "Y61"),
    ("QMF", "NHS North East London ICB", "Y56"),
    ("QMJ", "NHS North Central London ICB", "Y56"),
    ("QRV", "NHS North West London ICB", "Y56"),
    ("QKK", "NHS South East London ICB", "Y56"),
    ("QWE", "NHS South West London ICB", "Y56"),
    ("QKS", "NHS Kent and Medway ICB", "Y59"),
    ("QNX", "NHS Sussex ICB", "Y59"),
    ("QXU", "NHS Surrey Heartlands ICB", "Y59"),
    ("QRL", "NHS Hampshire and Isle of Wight ICB", "Y59"),
    ("QU9", "NHS Buckinghamshire, Oxfordshire and Berkshire West ICB", "Y59"),
    ("QSL", "NHS Somerset ICB", "Y58"),
    ("QUY", "NHS Bristol, North Somerset and South Gloucestershire ICB", "Y58"),
    ("QR1", "NHS Gloucestershire ICB", "Y58"),
    ("QVV", "NHS Dorset ICB", "Y58"),
    ("QJK", "NHS Devon ICB", "Y58"),
    ("QT6", "NHS Cornwall and the Isles of Scilly ICB", "Y58"),
)
# Sub-ICB location codes people quote first, handed out before generated ones.
FAMILIAR_CCGS = ("00K", "15N", "99A", "13T", "84H", "00L")

TOWNS = (
    "Ashford", "Bridgwater", "Carlton", "Darlington", "Eastleigh", "Felling", "Gosforth",
    "Hexham", "Ilkley", "Jarrow", "Kendal", "Longbenton", "Morpeth", "Newburn", "Ormskirk",
    "Prudhoe", "Redcar", "Seaham", "Thornaby", "Ulverston", "Wallsend", "Whitley Bay",
    "Yarm", "Alnwick", "Blyth", "Cramlington", "Durham", "Easington", "Ferryhill", "Guisborough",
    "Hartlepool", "Ingleby", "Kirkby", "Lanchester", "Marske", "Norton", "Otley", "Penrith",
    "Ripon", "Skipton", "Tynemouth", "Washington", "Whickham", "Stanley", "Consett", "Amble",
)  # fmt: skip
STREETS = (
    "Bridge Street", "Church Lane", "High Street", "Station Road", "Park Road", "Victoria Road",
    "Mill Lane", "Market Place", "Front Street", "Queen Street", "King Street", "West Road",
    "North Road", "Albert Road", "Grange Road", "Chester Road", "The Green", "Elm Grove",
    "Oak Avenue", "Beech Road", "Cross Street", "Castle Street", "Westgate", "Northgate",
)  # fmt: skip
FEATURES = ("Riverside", "Parkside", "The Oaks", "Beacon", "Valley", "Millfield", "Meadowbank",
            "Hillcrest", "Brookside", "Fernlea", "Woodlands", "Cedars")  # fmt: skip
SURNAMES = ("Patel", "Khan", "Smith", "Jones", "Okafor", "Williams", "Singh", "Brown",
            "Taylor", "Ahmed", "Murphy", "Evans", "Chaudhry", "Walker", "Robinson")  # fmt: skip
PCN_SUFFIXES = ("Central", "North", "South", "East", "West", "Rural", "Coastal", "Villages")
COUNTIES = ("Tyne and Wear", "Northumberland", "County Durham", "Cumbria", "North Yorkshire",
            "Cleveland", "Lancashire", "Somerset", "Devon", "Kent")  # fmt: skip
POSTCODE_AREAS = ("NE", "DH", "SR", "TS", "DL", "CA", "LA", "HG", "BD", "TA", "EX", "CT")
PRACTICE_LETTERS = "ABCDFGHJKLMNPY"


@dataclass(frozen=True, slots=True)
class Icb:
    code: str
    name: str
    region: str  # NHS England region, e.g. Y63


@dataclass(frozen=True, slots=True)
class Ccg:
    """A sub-ICB location; people still call it a CCG."""

    code: str
    name: str
    icb: str


@dataclass(frozen=True, slots=True)
class Pcn:
    code: str
    name: str
    ccg: str


@dataclass(frozen=True, slots=True)
class Practice:
    code: str
    name: str
    pcn: str | None  # None for a closed practice
    ccg: str
    icb: str
    region: str
    address: tuple[str, str, str, str, str]  # epraccur's five address lines
    postcode: str
    phone: str
    opened: str  # YYYYMMDD
    closed: str = ""  # YYYYMMDD, or empty while open
    status: str = "A"  # ODS status: A active, C closed

    @property
    def site(self) -> str:
        """A short location people recognise: the practice's street and town."""
        return f"{self.address[1]}, {self.address[2]}"


class Registry:
    """Hands out unique ODS codes and plausible names from one seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._used: set[str] = set()
        self._ccgs = list(FAMILIAR_CCGS)

    def _unique(self, make: str) -> str:
        for _ in range(10_000):
            code = "".join(self.rng.choice(c) if len(c) > 1 else c for c in make.split("|"))
            if code not in self._used:
                self._used.add(code)
                return code
        raise RuntimeError(f"ran out of codes shaped {make}")

    def icb(self, index: int) -> Icb:
        code, name, region = ICBS[index % len(ICBS)]
        return Icb(code, name, region)

    def ccg(self, icb: Icb) -> Ccg:
        while self._ccgs:
            code = self._ccgs.pop(0)
            if code not in self._used:
                self._used.add(code)
                break
        else:
            code = self._unique("0123456789|0123456789|ABCDEFGHJKLMNPQRSTVWXY")
        return Ccg(code, f"{icb.name} - {code}", icb.code)

    def pcn(self, ccg: Ccg) -> Pcn:
        digits = "0123456789"
        code = self._unique("|".join(["U", digits, digits, digits, digits, digits]))
        town = self.rng.choice(TOWNS)
        return Pcn(code, f"{town} {self.rng.choice(PCN_SUFFIXES)} PCN", ccg.code)

    def practice(self, pcn: Pcn | None, ccg: Ccg, icb: Icb, *, closed: bool = False) -> Practice:
        rng = self.rng
        digits = "0123456789"
        code = self._unique("|".join([PRACTICE_LETTERS, digits, digits, digits, digits, digits]))
        town, street = rng.choice(TOWNS), rng.choice(STREETS)
        name = rng.choice(
            (
                f"The Surgery, {street}",
                f"{street} Surgery",
                f"{town} Medical Centre",
                f"{rng.choice(FEATURES)} Medical Practice",
                f"{town} Health Centre",
                f"Dr {rng.choice(SURNAMES)} & Partners",
                f"{rng.choice(FEATURES)} Surgery",
                f"{street} Medical Group",
            )
        )
        area = rng.choice(POSTCODE_AREAS)
        inward = "".join(rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
        postcode = f"{area}{rng.randint(1, 39)} {rng.randint(1, 9)}{inward}"
        building = rng.choice(("", "The Health Centre", "Medical Centre", "The Surgery"))
        year = rng.randint(1974, 2019)
        opened = f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        return Practice(
            code=code,
            name=name,
            pcn=pcn.code if pcn else None,
            ccg=ccg.code,
            icb=icb.code,
            region=icb.region,
            address=(
                building,
                f"{rng.randint(1, 180)} {street}",
                town,
                rng.choice(COUNTIES),
                "",
            ),
            postcode=postcode,
            phone=f"0{rng.randint(1130, 1989)} {rng.randint(100000, 999999)}",
            opened=opened,
            closed=f"20{rng.randint(20, 24)}0331" if closed else "",
            status="C" if closed else "A",
        )
