"""A synthetic population of Chinese residents, and plausible records about each of them.

Everything is drawn from a ``random.Random`` the caller seeds, never the global one, so the same
seed always gives the same people and records. The ID numbers are valid (real county codes,
birth date, sex digit and checksum) but belong to nobody known: they are simulation data.

Region codes are real county-level codes; ``first_year`` is the year from which the code was in
use (0: always), so a person born earlier never gets it (``stdnum`` checks this).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate

__all__ = ["Person", "generate_people", "sample_records"]

# City -> (latitude, longitude) of its centre.
CITIES: dict[str, tuple[float, float]] = {
    "北京市": (39.9042, 116.4074),
    "天津市": (39.3434, 117.3616),
    "上海市": (31.2304, 121.4737),
    "石家庄市": (38.0428, 114.5149),
    "太原市": (37.8706, 112.5489),
    "沈阳市": (41.8057, 123.4315),
    "长春市": (43.8171, 125.3235),
    "哈尔滨市": (45.8038, 126.5349),
    "南京市": (32.0603, 118.7969),
    "杭州市": (30.2741, 120.1551),
    "宁波市": (29.8683, 121.5440),
    "福州市": (26.0745, 119.2965),
    "厦门市": (24.4798, 118.0894),
    "南昌市": (28.6820, 115.8579),
    "济南市": (36.6512, 117.1201),
    "青岛市": (36.0671, 120.3826),
    "郑州市": (34.7466, 113.6254),
    "武汉市": (30.5928, 114.3055),
    "长沙市": (28.2282, 112.9388),
    "广州市": (23.1291, 113.2644),
    "深圳市": (22.5431, 114.0579),
    "重庆市": (29.5630, 106.5516),
    "成都市": (30.5728, 104.0668),
    "贵阳市": (26.6470, 106.6302),
    "昆明市": (25.0389, 102.7183),
    "西安市": (34.3416, 108.9398),
    "兰州市": (36.0611, 103.8343),
    "银川市": (38.4872, 106.2309),
    "乌鲁木齐市": (43.8256, 87.6168),
}

# (code, city, district, first_year)
REGIONS: tuple[tuple[str, str, str, int], ...] = (
    ("110101", "北京市", "东城区", 0),
    ("110102", "北京市", "西城区", 0),
    ("110105", "北京市", "朝阳区", 0),
    ("110106", "北京市", "丰台区", 0),
    ("110108", "北京市", "海淀区", 0),
    ("120101", "天津市", "和平区", 0),
    ("120103", "天津市", "河西区", 0),
    ("120104", "天津市", "南开区", 0),
    ("310101", "上海市", "黄浦区", 0),
    ("310104", "上海市", "徐汇区", 0),
    ("310105", "上海市", "长宁区", 0),
    ("310106", "上海市", "静安区", 0),
    ("310107", "上海市", "普陀区", 0),
    ("310110", "上海市", "杨浦区", 0),
    ("310115", "上海市", "浦东新区", 1992),
    ("130102", "石家庄市", "长安区", 1983),
    ("140105", "太原市", "小店区", 1997),
    ("210102", "沈阳市", "和平区", 1983),
    ("220102", "长春市", "南关区", 1983),
    ("230102", "哈尔滨市", "道里区", 1983),
    ("320102", "南京市", "玄武区", 1983),
    ("330106", "杭州市", "西湖区", 1983),
    ("330122", "杭州市", "桐庐县", 0),
    ("330203", "宁波市", "海曙区", 1983),
    ("350102", "福州市", "鼓楼区", 1983),
    ("350121", "福州市", "闽侯县", 0),
    ("350203", "厦门市", "思明区", 1983),
    ("360121", "南昌市", "南昌县", 0),
    ("370102", "济南市", "历下区", 1983),
    ("370202", "青岛市", "市南区", 1983),
    ("410105", "郑州市", "金水区", 1983),
    ("420106", "武汉市", "武昌区", 1983),
    ("430121", "长沙市", "长沙县", 0),
    ("440103", "广州市", "荔湾区", 1983),
    ("440106", "广州市", "天河区", 1985),
    ("440304", "深圳市", "福田区", 1983),
    ("440305", "深圳市", "南山区", 1983),
    ("500103", "重庆市", "渝中区", 1997),
    ("510107", "成都市", "武侯区", 1990),
    ("510121", "成都市", "金堂县", 0),
    ("520102", "贵阳市", "南明区", 1983),
    ("530102", "昆明市", "五华区", 1983),
    ("610113", "西安市", "雁塔区", 1983),
    ("620121", "兰州市", "永登县", 0),
    ("640121", "银川市", "永宁县", 0),
    ("650121", "乌鲁木齐市", "乌鲁木齐县", 0),
)

# (surname, weight): common surnames, weighted roughly by their share of the population (%).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.25), ("李", 7.19), ("张", 6.83), ("刘", 5.38), ("陈", 4.53), ("杨", 3.08),
    ("黄", 2.23), ("赵", 2.13), ("吴", 2.05), ("周", 1.89), ("徐", 1.48), ("孙", 1.45),
    ("马", 1.34), ("朱", 1.26), ("胡", 1.16), ("郭", 1.15), ("何", 1.06), ("林", 1.03),
    ("高", 1.00), ("罗", 0.87), ("郑", 0.80), ("梁", 0.79), ("谢", 0.67), ("宋", 0.66),
    ("唐", 0.63), ("许", 0.62), ("韩", 0.61), ("冯", 0.60), ("邓", 0.60), ("曹", 0.55),
    ("彭", 0.54), ("曾", 0.53), ("肖", 0.52), ("田", 0.49), ("董", 0.48), ("袁", 0.47),
    ("潘", 0.46), ("于", 0.45), ("蒋", 0.44), ("蔡", 0.43), ("余", 0.42), ("杜", 0.41),
    ("叶", 0.40), ("程", 0.39), ("苏", 0.38), ("魏", 0.37), ("吕", 0.36), ("丁", 0.35),
    ("任", 0.34), ("沈", 0.33), ("姚", 0.32), ("卢", 0.31), ("姜", 0.30), ("崔", 0.29),
    ("钟", 0.28), ("谭", 0.27), ("陆", 0.26), ("汪", 0.25), ("范", 0.24), ("金", 0.23),
    ("石", 0.22), ("廖", 0.21), ("贾", 0.20), ("夏", 0.19), ("韦", 0.18), ("方", 0.16),
    ("欧阳", 0.05), ("司马", 0.01),
)  # fmt: skip

MALE_CHARS = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳博文昊晨轩睿志建国"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀英慧巧美娅婷雪琳晶欣怡佳颖梦瑶雨萱涵璐倩妍诗琪彤蕾薇玲"

ROADS = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "胜利路", "长江路",
    "黄河路", "世纪大道", "花园路", "青年路", "幸福路", "光明路", "友谊路", "滨江大道",
    "迎宾大道", "中山东路", "人民南路", "建国路", "朝阳路", "科技路", "学府路", "湖滨路",
)  # fmt: skip

MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
    "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "180", "181",
    "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

HOTEL_BRANDS = (
    "锦江之星", "如家酒店", "汉庭酒店", "全季酒店", "7天连锁酒店", "亚朵酒店", "维也纳酒店",
    "希尔顿欢朋酒店", "万豪酒店", "香格里拉大酒店", "格林豪泰酒店", "桔子水晶酒店",
)  # fmt: skip

# (airline, IATA code)
AIRLINES = (
    ("中国国际航空", "CA"), ("中国东方航空", "MU"), ("中国南方航空", "CZ"), ("海南航空", "HU"),
    ("厦门航空", "MF"), ("四川航空", "3U"), ("深圳航空", "ZH"), ("山东航空", "SC"),
    ("春秋航空", "9C"), ("吉祥航空", "HO"),
)  # fmt: skip

AIRPORTS = (
    "北京首都国际机场(PEK)", "北京大兴国际机场(PKX)", "上海浦东国际机场(PVG)",
    "上海虹桥国际机场(SHA)", "广州白云国际机场(CAN)", "深圳宝安国际机场(SZX)",
    "成都天府国际机场(TFU)", "重庆江北国际机场(CKG)", "杭州萧山国际机场(HGH)",
    "西安咸阳国际机场(XIY)", "昆明长水国际机场(KMG)", "武汉天河国际机场(WUH)",
    "厦门高崎国际机场(XMN)", "南京禄口国际机场(NKG)", "长沙黄花国际机场(CSX)",
    "乌鲁木齐地窝堡国际机场(URC)",
)  # fmt: skip

BORDER_PORTS = (
    "罗湖口岸", "深圳湾口岸", "福田口岸", "拱北口岸", "横琴口岸", "港珠澳大桥珠海公路口岸",
    "上海浦东国际机场口岸", "北京首都国际机场口岸", "广州白云国际机场口岸",
)  # fmt: skip

RENTAL_KINDS = ("整租", "合租", "单间", "公寓", "商铺")

BANKS = (
    "中国工商银行", "中国建设银行", "中国农业银行", "中国银行", "交通银行", "招商银行",
    "中国邮政储蓄银行", "兴业银行", "浦发银行", "中信银行",
)  # fmt: skip

# (kind, what the caller reported); "{amount}" is filled in with a sum of money.
INCIDENTS = (
    ("盗窃", "停放的电动自行车被盗"),
    ("盗窃", "随身携带的手机被盗"),
    ("诈骗", "接到冒充客服的电话后被骗转账{amount}元"),
    ("诈骗", "网购刷单被骗{amount}元"),
    ("纠纷", "与他人因停车问题发生口角"),
    ("交通事故", "发生一起两车轻微剐蹭事故\uff0c无人员受伤"),
    ("遗失物品", "遗失钱包一个\uff0c内有现金约{amount}元"),
    ("噪音扰民", "邻居夜间装修噪音扰民"),
    ("寻衅滋事", "有人酒后在店内滋事"),
    ("走失寻人", "家中老人外出后走失"),
)

_Region = tuple[str, str, str, int]
_Draw = Callable[[], str]
_CST = timezone(timedelta(hours=8))
_FIRST_BIRTH = date(1950, 1, 1).toordinal()
_LAST_BIRTH = date(2007, 12, 31).toordinal()
_EVENTS_START = datetime(2024, 1, 1, tzinfo=_CST)
_EVENTS_MINUTES = 60 * 24 * 790  # about 26 months, to early 2026
_SURNAME_NAMES = tuple(name for name, _ in SURNAMES)
_SURNAME_CUM = tuple(accumulate(weight for _, weight in SURNAMES))
# About 16% of people join the household of the person generated just before them, which puts
# roughly 30% of the population (1 - 0.84**2) in a household of two or more.
_JOIN_HOUSEHOLD = 0.16
_COMMA = "\uff0c"  # the full-width comma of Chinese text
_PNR_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True, slots=True)
class Person:
    """One synthetic resident: what an identity record holds about them."""

    id_number: str
    name: str
    birth_date: date
    birth_place: str
    address: str
    phone: str
    sex: str

    def identity_record(self) -> dict[str, str]:
        """The person's record in the default schema's ``identity`` collection."""
        return {
            "name": self.name,
            "id_number": self.id_number,
            "birth_date": self.birth_date.isoformat(),
            "birth_place": self.birth_place,
            "address": self.address,
            "phone": self.phone,
        }


def generate_people(n: int, *, seed: int) -> list[Person]:
    """Return ``n`` synthetic people, the same ones for the same seed.

    ID numbers and phone numbers are unique within one call; about 30% of people share a
    surname and an address with another (a household).

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be zero or more, not {n}")
    rng = random.Random(seed)  # noqa: S311 - simulation data, not secrets
    ids: set[str] = set()
    phones: set[str] = set()
    people: list[Person] = []
    for _ in range(n):
        family = people[-1] if people and rng.random() < _JOIN_HOUSEHOLD else None
        people.append(_person(rng, family, ids, phones))
    return people


def _person(rng: random.Random, family: Person | None, ids: set[str], phones: set[str]) -> Person:
    sex = "M" if rng.random() < 0.5 else "F"
    born = date.fromordinal(rng.randint(_FIRST_BIRTH, _LAST_BIRTH))
    region = _birth_region(rng, born.year)
    id_number = _unique(ids, lambda: _id_number(rng, region[0], born, sex))
    phone = _unique(phones, lambda: f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}")
    surname = family.name[: _surname_length(family.name)] if family else _surname(rng)
    address = family.address if family else _address(rng, _home_region(rng, region))
    return Person(
        id_number=id_number,
        name=surname + _given_name(rng, sex),
        birth_date=born,
        birth_place=region[1],
        address=address,
        phone=phone,
        sex=sex,
    )


def _unique(seen: set[str], draw: _Draw) -> str:
    value = draw()
    while value in seen:
        value = draw()
    seen.add(value)
    return value


def _id_number(rng: random.Random, code: str, born: date, sex: str) -> str:
    # The 17th digit is odd for men and even for women.
    sequence = rng.randrange(500) * 2 + (1 if sex == "M" else 0)
    body = f"{code}{born:%Y%m%d}{sequence:03d}"
    return body + _check_digit(body)


def _check_digit(body: str) -> str:
    """The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2)."""
    checksum = (1 - 2 * int(body, 13)) % 11
    return "X" if checksum == 10 else str(checksum)


def _birth_region(rng: random.Random, year: int) -> _Region:
    return rng.choice(_REGIONS_BY_YEAR[year])


def _home_region(rng: random.Random, birth_region: _Region) -> _Region:
    # Most people live in the city where they were born; the rest moved anywhere.
    if rng.random() < 0.6:
        return birth_region
    return rng.choice(REGIONS)


def _surname(rng: random.Random) -> str:
    return rng.choices(_SURNAME_NAMES, cum_weights=_SURNAME_CUM)[0]


def _surname_length(name: str) -> int:
    return 2 if name[:2] in _SURNAME_NAMES else 1


def _given_name(rng: random.Random, sex: str) -> str:
    chars = MALE_CHARS if sex == "M" else FEMALE_CHARS
    if rng.random() < 0.3:
        return rng.choice(chars)
    return rng.choice(chars) + rng.choice(chars)


def _address(rng: random.Random, region: _Region) -> str:
    _, city, district, _ = region
    road = rng.choice(ROADS)
    number, building = rng.randint(1, 999), rng.randint(1, 30)
    flat = rng.randint(1, 33) * 100 + rng.randint(1, 4)
    return f"{city}{district}{road}{number}号{building}栋{flat}室"


def _regions_by_year() -> dict[int, tuple[_Region, ...]]:
    years = range(date.fromordinal(_FIRST_BIRTH).year, date.fromordinal(_LAST_BIRTH).year + 1)
    return {year: tuple(r for r in REGIONS if r[3] <= year) for year in years}


_REGIONS_BY_YEAR = _regions_by_year()


def sample_records(person: Person, rng: random.Random) -> dict[str, list[dict[str, str]]]:
    """Return plausible records about ``person`` for every default-schema collection.

    ``identity`` gets exactly one record; every other collection zero to three. Every record
    passes ``Schema.default().collection(name).validate(...)``. Things that belong to the person
    (travel documents, bank accounts) are derived from the ID number, so they stay the same
    across calls.
    """
    own = random.Random(f"custodes.sim:{person.id_number}")  # noqa: S311 - simulation data
    return {
        "identity": [person.identity_record()],
        "hotel_stays": [_hotel_stay(rng) for _ in range(_count(rng, 40, 35, 15, 10))],
        "flights": [_flight(rng) for _ in range(_count(rng, 55, 25, 12, 8))],
        "border_crossings": _border_crossings(rng, own, _count(rng, 75, 15, 7, 3)),
        "rentals": [_rental(rng) for _ in range(_count(rng, 60, 30, 8, 2))],
        "bank_deposits": _deposits(rng, own, _count(rng, 50, 25, 15, 10)),
        "phone_location": [_sighting(rng, person) for _ in range(_count(rng, 30, 25, 25, 20))],
        "police_incidents": [_incident(rng, person) for _ in range(_count(rng, 85, 10, 4, 1))],
    }


def _count(rng: random.Random, *weights: int) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def _moment(rng: random.Random) -> datetime:
    return _EVENTS_START + timedelta(minutes=rng.randrange(_EVENTS_MINUTES))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _hotel_stay(rng: random.Random) -> dict[str, str]:
    _, city, district, _ = rng.choice(REGIONS)
    check_in = _moment(rng).replace(hour=rng.randint(12, 23))
    check_out = (check_in + timedelta(days=rng.randint(1, 4))).replace(
        hour=rng.randint(7, 12), minute=rng.randrange(60)
    )
    return {
        "hotel": f"{rng.choice(HOTEL_BRANDS)}({city.removesuffix('市')}{district}店)",
        "city": city.removesuffix("市"),
        "room": f"{rng.randint(2, 25)}{rng.randint(1, 40):02d}",
        "check_in": _iso(check_in),
        "check_out": _iso(check_out),
    }


def _flight(rng: random.Random) -> dict[str, str]:
    airline, code = rng.choice(AIRLINES)
    origin, destination = rng.sample(AIRPORTS, 2)
    return {
        "airline": airline,
        "flight_number": f"{code}{rng.randint(1001, 9899)}",
        "origin": origin,
        "destination": destination,
        "departs_at": _iso(_moment(rng)),
        "seat": f"{rng.randint(1, 60)}{rng.choice('ABCDEFGHJK')}",
        "booking_ref": "".join(rng.choices(_PNR_CHARS, k=6)),
    }


def _border_crossings(rng: random.Random, own: random.Random, n: int) -> list[dict[str, str]]:
    documents = [
        ("普通护照", f"E{own.randrange(10**8):08d}"),
        ("往来港澳通行证", f"C{own.randrange(10**8):08d}"),
    ]
    moment = _moment(rng)
    crossings = []
    for i in range(n):
        kind, number = rng.choice(documents)
        crossings.append(
            {
                "port": rng.choice(BORDER_PORTS),
                "direction": "exit" if i % 2 == 0 else "entry",
                "crossed_at": _iso(moment),
                "document_type": kind,
                "document_number": number,
            }
        )
        moment += timedelta(days=rng.randint(1, 20), minutes=rng.randrange(600))
    return crossings


def _rental(rng: random.Random) -> dict[str, str]:
    start = date(2020, 1, 1) + timedelta(days=rng.randrange(6 * 365))
    return {
        "kind": rng.choice(RENTAL_KINDS),
        "address": _address(rng, rng.choice(REGIONS)),
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=rng.choice((182, 365, 730)))).isoformat(),
        "lessor": _surname(rng) + _given_name(rng, rng.choice("MF")),
        "monthly_rent": f"{rng.randrange(800, 15000, 50)}.00",
    }


def _deposits(rng: random.Random, own: random.Random, n: int) -> list[dict[str, str]]:
    accounts = [(own.choice(BANKS), f"62{own.randrange(10**17):017d}") for _ in range(2)]
    deposits = []
    for _ in range(n):
        bank, account = rng.choice(accounts)
        moment = _moment(rng).replace(hour=rng.randint(9, 16))
        deposits.append(
            {
                "bank": bank,
                "account_number": account,
                "amount": f"{rng.randint(500, 49_999)}.{rng.randrange(100):02d}",
                "currency": rng.choices(("CNY", "USD", "HKD"), weights=(90, 5, 5))[0],
                "deposited_at": _iso(moment),
            }
        )
    return deposits


def _sighting(rng: random.Random, person: Person) -> dict[str, str]:
    city = _city_of(person.address) if rng.random() < 0.8 else rng.choice(list(CITIES))
    lat, lon = CITIES[city]
    lat += rng.uniform(-0.15, 0.15)
    lon += rng.uniform(-0.15, 0.15)
    network = rng.choice(("00", "01", "11"))
    return {
        "phone": person.phone,
        "observed_at": _iso(_moment(rng).replace(second=rng.randrange(60))),
        "cell_id": f"460-{network}-{rng.randint(1, 65_535)}-{rng.randint(1, 268_435_455)}",
        "position": f"{lat:.6f},{lon:.6f}",
    }


def _incident(rng: random.Random, person: Person) -> dict[str, str]:
    city = _city_of(person.address)
    code, _, district, _ = rng.choice([r for r in REGIONS if r[1] == city])
    moment = _moment(rng)
    kind, what = rng.choice(INCIDENTS)
    road = rng.choice(ROADS)
    what = what.format(amount=rng.randrange(200, 50_000, 10))
    summary = f"{moment:%H时%M分}许{_COMMA}报警人称在{district}{road}附近{what}"
    return {
        "incident_number": f"J{code}{moment:%Y%m%d}{rng.randrange(10**5):05d}",
        "occurred_at": _iso(moment),
        "kind": kind,
        "station": f"{city}公安局{district}分局{road.removesuffix('路')}派出所",
        "summary": f"{summary}{_COMMA}民警到场处置。",
    }


def _city_of(address: str) -> str:
    return next(city for city in CITIES if address.startswith(city))
