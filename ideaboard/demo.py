"""Demo content: three boards, about sixty ideas across every status, votes and comments;
and fan-club communities with threads, replies, a moderator, a pinned thread and a thread
promoted to an idea that shipped.

Bilingual: about a quarter of the ideas (with their comments, notes and official answers)
are in Russian, so a Russian reader meets Russian ideas too; one community talks Russian.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from .extensions import db
from .models import Board, Comment, Idea, Status, StatusChange, User, Vote, utcnow
from .services import (
    accounts,
    boards,
    comments,
    communities,
    ideas,
    promotion,
    roadmap,
    threads,
    votes,
)

BOARDS = [
    ("mobile-app", "Mobile app", "The iOS and Android apps."),
    ("web", "Web dashboard", "Everything in the browser."),
    ("new-products", "New products", "What else should we make for you?"),
]

# (board slug, kind, title, body)
IDEAS = [
    (
        "mobile-app",
        "idea",
        "Dark mode for the mobile app",
        "The white screen at night is blinding. A **dark theme** that follows the system setting would be perfect.",
    ),
    (
        "mobile-app",
        "problem",
        "App crashes when uploading a photo over 10 MB",
        "Steps:\n\n1. Open a project\n2. Attach a large photo\n3. The app closes\n\nAndroid 14, Pixel 7.",
    ),
    (
        "mobile-app",
        "idea",
        "Offline mode for field work",
        "We work in basements with no signal. Let us *queue changes* and sync later.",
    ),
    (
        "mobile-app",
        "idea",
        "Виджет с задачами на сегодня",
        "Виджет на главном экране с тремя самыми срочными задачами.",
    ),
    (
        "mobile-app",
        "problem",
        "Push notifications arrive twice",
        "Since the last update every notification shows up two times.",
    ),
    (
        "mobile-app",
        "idea",
        "Face ID / fingerprint sign-in",
        "Typing the password on a phone is painful.",
    ),
    (
        "mobile-app",
        "idea",
        "Share a report as PDF from the phone",
        "Clients ask for a PDF on the spot.",
    ),
    (
        "mobile-app",
        "problem",
        "Бесконечный вход после сброса пароля",
        "После сброса пароля приложение снова и снова просит войти.",
    ),
    (
        "mobile-app",
        "idea",
        "Bigger tap targets in the calendar",
        "The day cells are tiny on small phones.",
    ),
    (
        "mobile-app",
        "idea",
        "Voice notes attached to tasks",
        "Record a quick voice memo instead of typing.",
    ),
    (
        "mobile-app",
        "problem",
        "Battery drain in background",
        "The app uses 15% battery a day even when closed.",
    ),
    (
        "mobile-app",
        "idea",
        "Горизонтальный режим для планшетов",
        "На iPad приложение выглядит как растянутая версия для телефона.",
    ),
    (
        "mobile-app",
        "idea",
        "Quick-add from the share sheet",
        "Share a link or photo straight into a new task.",
    ),
    (
        "mobile-app",
        "idea",
        "Русский интерфейс в приложении",
        "Половина нашей команды говорит по-русски — очень ждём перевод.",
    ),
    (
        "mobile-app",
        "problem",
        "Times shown in the wrong time zone",
        "Events created on the web show one hour off on the phone.",
    ),
    (
        "mobile-app",
        "idea",
        "Сканирование документов камерой",
        "Автоматически обрезать и прикреплять отсканированные чеки.",
    ),
    ("mobile-app", "idea", "Apple Watch companion", "Check off tasks from the wrist."),
    ("mobile-app", "idea", "Pin favourite projects", "Keep the three projects I use daily on top."),
    (
        "mobile-app",
        "problem",
        "Search does not find archived items",
        "Archived tasks never show up in search results.",
    ),
    (
        "mobile-app",
        "idea",
        "Виброотклик при выполнении задачи",
        "Лёгкая вибрация, когда задача выполнена, — это очень приятно.",
    ),
    ("web", "idea", "Keyboard shortcuts everywhere", "`j`/`k` to move, `e` to edit, `?` for help."),
    ("web", "idea", "Export everything to CSV", "Our finance team needs the raw data monthly."),
    (
        "web",
        "problem",
        "Dashboard takes 10 seconds to load",
        "With 40 projects the dashboard is painfully slow.",
    ),
    ("web", "idea", "Единый вход через SAML", "Наш ИТ-отдел требует SSO для каждого сервиса."),
    ("web", "idea", "Custom fields on tasks", "We need a *cost centre* field on every task."),
    (
        "web",
        "problem",
        "Drag and drop broken in Firefox",
        "Cards snap back to their original column.",
    ),
    ("web", "idea", "Gantt chart view", "Plan projects on a timeline with dependencies."),
    (
        "web",
        "idea",
        "Двухфакторная аутентификация",
        "Хотя бы через приложения TOTP, а аппаратные ключи были бы приятным бонусом.",
    ),
    (
        "web",
        "idea",
        "Public API with webhooks",
        "Let us connect our CRM: webhooks on task changes.",
    ),
    (
        "web",
        "problem",
        "Email digests contain deleted tasks",
        "The daily digest lists tasks that were deleted.",
    ),
    ("web", "idea", "Recurring tasks", "Every Monday: *send the weekly report*."),
    ("web", "idea", "Журнал действий для администраторов", "Кто, что и когда изменил."),
    ("web", "idea", "Templates for new projects", "Start a project from a saved template."),
    (
        "web",
        "problem",
        "Printing a board cuts off columns",
        "Only the first three columns fit on paper.",
    ),
    (
        "web",
        "idea",
        "Markdown tables in descriptions",
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nTables would make specs readable.",
    ),
    ("web", "idea", "Учёт времени по задачам", "Таймер «старт/стоп» и итоги за неделю."),
    (
        "web",
        "idea",
        "Guest access for clients",
        "Clients should see their project without a full seat.",
    ),
    (
        "web",
        "problem",
        "Unicode names break the mention picker",
        "Names like Ёлкина or Zoë cannot be @mentioned.",
    ),
    ("web", "idea", "Bulk edit tasks", "Select twenty tasks and change the assignee at once."),
    ("web", "idea", "Интеграция со Slack", "Публиковать смену статусов в канал команды."),
    (
        "new-products",
        "product",
        "A lightweight CRM for small teams",
        "You already hold our client list — a small CRM would fit right in.",
    ),
    ("new-products", "product", "Invoicing add-on", "Turn tracked time into invoices."),
    ("new-products", "product", "A desktop app for Linux", "Native app with offline sync."),
    (
        "new-products",
        "product",
        "Экран у переговорной",
        "Небольшой экран у каждой комнаты с расписанием бронирований.",
    ),
    (
        "new-products",
        "idea",
        "Education pricing",
        "Schools and universities on a budget would love a discount.",
    ),
    (
        "new-products",
        "product",
        "Customer portal product",
        "A branded portal where our customers follow their orders.",
    ),
    (
        "new-products",
        "product",
        "Course platform",
        "We teach with your tool already; host the courses too.",
    ),
    ("new-products", "idea", "Магазин шаблонов", "Пусть эксперты продают свои шаблоны проектов."),
    ("new-products", "product", "AI meeting summaries", "Summaries of calls linked to tasks."),
    (
        "new-products",
        "product",
        "Sysadmin edition with on-prem install",
        "A quarter of us are sysadmins: we want to self-host.",
    ),
    ("new-products", "idea", "Non-profit plan", "Free tier for registered charities."),
    (
        "new-products",
        "product",
        "Приложение для выездных техников",
        "Маршруты, чек-листы и подпись клиента прямо на объекте.",
    ),
    ("new-products", "product", "Inventory module", "Track parts used per job."),
    ("new-products", "idea", "Referral programme", "Give a month free for every friend who joins."),
    ("new-products", "product", "Browser extension clipper", "Clip any page into a task."),
    ("new-products", "product", "Вики для команды", "Документация рядом с работой."),
    (
        "new-products",
        "product",
        "Форум для клуба владельцев",
        "Сообщество пользователей с модераторами из своих.",
    ),
    (
        "new-products",
        "idea",
        "Local user meetups",
        "Meet other customers in our city twice a year.",
    ),
    (
        "new-products",
        "product",
        "Booking system for workshops",
        "Let customers book our workshops online.",
    ),
    (
        "new-products",
        "product",
        "Аналитическая панель",
        "Отчёты по всем проектам как платное дополнение.",
    ),
]

MEMBERS = [
    ("anna@example.com", "Anna Petrova"),
    ("ben@example.com", "Ben Carter"),
    ("chloe@example.com", "Chloé Martin"),
    ("dmitry@example.com", "Дмитрий Соколов"),
    ("emma@example.com", "Emma Schulz"),
    ("farid@example.com", "Farid Haddad"),
    ("grace@example.com", "Grace Liu"),
    ("hugo@example.com", "Hugo Silva"),
    ("irina@example.com", "Ирина Волкова"),
    ("jon@example.com", "Jon Berg"),
]

COMMENTS = [
    "+1, this would save us hours every week.",
    "Same here. Any workaround in the meantime?",
    "We would pay extra for this.",
    "I see this on version 4.2 as well.",
    "Could you share more detail about **your setup**?",
    "Please make it optional, not everyone wants it.",
    "Очень нужно, поддерживаю!",
    "This is the one thing keeping us from upgrading.",
]
#: Comments in Russian, on the ideas written in Russian (a quarter of the demo).
COMMENTS_RU = [
    "Поддерживаю, это сэкономит нам несколько часов в неделю.",
    "У нас то же самое. Есть ли пока обходной путь?",
    "Готовы за это доплатить.",
    "Воспроизводится и в версии 4.2.",
    "Расскажите подробнее, **как у вас всё настроено**?",
    "Пожалуйста, сделайте это отключаемым: нужно не всем.",
    "Очень нужно, поддерживаю!",
    "Только из-за этого мы пока не переходим на новый тариф.",
]
OFFICIAL_RU = [
    "Спасибо всем, мы вас услышали. Идея уже в нашем плане.",
    "Готово в последнем выпуске. Обновите приложение и расскажите, как вам!",
    "Мы внимательно всё обдумали и пока не будем это делать: это противоречит нашим обещаниям о конфиденциальности.",
    "Команда уже работает над этим; бета-версия — в следующем месяце.",
]
NOTES = ["", "Thanks for the votes!", "Details in the official response."]
NOTES_RU = ["", "Спасибо за голоса!", "Подробности — в официальном ответе."]


def _in_russian(title: str) -> bool:
    return any("а" <= ch.lower() <= "я" or ch in "ёЁ" for ch in title)


OFFICIAL = [
    "Thanks everyone — we hear you. This is now on our roadmap.",
    "We shipped this in the latest release. Update the app and let us know!",
    "We looked into this carefully and decided not to build it for now: it conflicts with our privacy promises.",
    "Our team is working on it right now; expect a beta next month.",
]

# Where the demo's ideas end up, cycling: every status gets several.
STATUS_PATH = {
    Status.HEARD: [],
    Status.UNDER_REVIEW: [Status.UNDER_REVIEW],
    Status.PLANNED: [Status.UNDER_REVIEW, Status.PLANNED],
    Status.IN_PROGRESS: [Status.UNDER_REVIEW, Status.PLANNED, Status.IN_PROGRESS],
    Status.SHIPPED: [Status.UNDER_REVIEW, Status.PLANNED, Status.IN_PROGRESS, Status.SHIPPED],
    Status.DECLINED: [Status.UNDER_REVIEW, Status.DECLINED],
}
TARGETS = [Status.HEARD, Status.HEARD, Status.UNDER_REVIEW, Status.PLANNED, Status.IN_PROGRESS,
           Status.SHIPPED, Status.HEARD, Status.DECLINED, Status.PLANNED, Status.SHIPPED]  # fmt: skip


#: The accounts `flask demo` prints to sign in with: (role, email).
SIGN_INS = [
    ("admin", "admin@example.com"),
    ("staff", "pm@example.com"),
    ("member", MEMBERS[0][0]),
    ("moderator", "mod@example.com"),
]

#: Fan clubs: (slug, name, description, rules, accent, threads). A thread is (title, body,
#: replies, what becomes of it): "pin" pins it, a status promotes it to an idea that moves
#: there on the roadmap. The first community is moderated by the demo's moderator.
COMMUNITIES = [
    (
        "niva",
        "Клуб владельцев Нивы",
        "Владельцы Нивы делятся опытом: зима, бездорожье, доработки. Команда читает и "
        "переносит лучшие идеи в план.",
        "1. Уважайте друг друга.\n2. Без рекламы.\n3. Фото и подробности приветствуются.",
        "#2e7d32",
        [
            (
                "Правила клуба и полезные ссылки",
                "Добро пожаловать! Прочитайте правила справа и представьтесь в ответах.",
                ["Привет всем! Нива 2019 года, Подмосковье.", "Рад быть здесь, езжу с 2012-го."],
                "pin",
            ),
            (
                "Подогрев лобового стекла в приложении",
                "Зимой хочется включать подогрев стекла из приложения заранее, как двигатель.",
                [
                    "Поддерживаю, при -30 это спасение.",
                    "Да, и чтобы по расписанию, вместе с прогревом.",
                    "Вот бы ещё и зеркала.",
                ],
                Status.SHIPPED,
            ),
            (
                "Карта бездорожья офлайн",
                "В лесу нет связи: нужны офлайн-карты грунтовок с отметками клуба.",
                ["Очень нужно для поездок на Алтай.", "Можно взять треки из GPX."],
                Status.PLANNED,
            ),
            (
                "Какое масло заливаете зимой?",
                "Поделитесь опытом: что льёте в мороз и как часто меняете.",
                ["5W-40 синтетику, меняю раз в 8 тысяч.", "0W-40, заводится при -35."],
                None,
            ),
        ],
    ),
    (
        "trail-riders",
        "Trail Riders Club",
        "Owners who take their bikes off the road: routes, gear, and what the app should do next.",
        "Be kind, stay on topic, and share your routes.",
        "#b45309",
        [
            (
                "Welcome, riders: start here",
                "Say hello in the replies: where you ride and on what.",
                ["Hi from Colorado, riding a 2021 model.", "Hello from the Alps!"],
                "pin",
            ),
            (
                "Share a route with the club in one tap",
                "Let us share a recorded route with the whole club, not one friend at a time.",
                ["Yes please, group rides would be so much easier.", "And with elevation."],
                Status.IN_PROGRESS,
            ),
            (
                "Best tyres for mixed gravel?",
                "Looking for something that survives wet rock and long tarmac stretches.",
                ["I ride 50/50 tyres and they have been great."],
                None,
            ),
        ],
    ),
]


def demo_sign_ins() -> list[tuple[str, str]]:
    """The demo's sign-in accounts that exist in this database: (role, email)."""
    existing = set(
        db.session.scalars(select(User.email).where(User.email.in_([e for _, e in SIGN_INS])))
    )
    return [(role, email) for role, email in SIGN_INS if email in existing]


def new_demo_passwords() -> list[tuple[str, str, str]]:
    """Give the demo's sign-in accounts new random passwords; return (role, email, password)."""
    made = []
    for role, email in demo_sign_ins():
        user = db.session.scalar(select(User).where(User.email == email))
        password = secrets.token_urlsafe(9)
        accounts.set_password(user, password)
        made.append((role, email, password))
    return made


def load_demo(
    seed: int = 7, progress: Callable[[str], object] = print
) -> list[tuple[str, str, str]]:
    """Create demo boards, people, ideas, votes and comments; return the sign-in details."""
    rng = random.Random(seed)
    made = []
    board_by_slug: dict[str, Board] = {}
    for slug, name, description in BOARDS:
        board_by_slug[slug] = boards.get_board_by_slug(slug) or boards.create_board(
            slug, name, description
        )
    progress(f"boards: {len(board_by_slug)}")

    def person(email: str, name: str, role: str) -> object:
        password = secrets.token_urlsafe(9)
        user = accounts.register_user(email, name, password, role=role)
        return user, password

    admin, admin_pw = person("admin@example.com", "Alex Admin", "admin")
    staff, staff_pw = person("pm@example.com", "Polina PM", "staff")
    made += [("admin", admin.email, admin_pw), ("staff", staff.email, staff_pw)]
    members = []
    for email, name in MEMBERS:
        user, password = person(email, name, "member")
        members.append(user)
        if len(made) < 3:
            made.append(("member", email, password))
    progress(f"people: {len(members) + 2}")

    now = utcnow()
    for n, (slug, kind, title, body) in enumerate(IDEAS):
        russian = _in_russian(title)  # its comments, notes and answers in the same language
        author = members[n % len(members)]
        idea = ideas.create_idea(author, board_by_slug[slug], kind, title, body)
        voters = rng.sample(members + [staff], k=min(len(members) + 1, int(rng.paretovariate(0.8))))
        for voter in voters:
            votes.set_vote(voter, idea, votes.VOTE)  # the author has voted already
        for c in range(rng.randint(0, 4)):
            said = rng.choice(COMMENTS_RU if russian else COMMENTS)
            comments.add_comment(members[(n + c + 1) % len(members)], idea, said)
        target = TARGETS[n % len(TARGETS)]
        for step in STATUS_PATH[target]:
            note = "" if step != target else rng.choice(NOTES_RU if russian else NOTES)
            roadmap.change_status(staff, idea, step.value, note)
        if target != Status.HEARD:
            official = {Status.SHIPPED: 1, Status.DECLINED: 2, Status.IN_PROGRESS: 3}.get(target, 0)
            answers = OFFICIAL_RU if russian else OFFICIAL
            comments.add_comment(staff, idea, answers[official], official=True)
        _backdate(
            idea, now - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23)), now, rng
        )
        if (n + 1) % 20 == 0:
            progress(f"ideas: {n + 1}/{len(IDEAS)}")
    mod, mod_pw = person("mod@example.com", "Марина Модератор", "moderator")
    made.append(("moderator", mod.email, mod_pw))
    _load_communities(admin, staff, mod, members, board_by_slug, rng)
    progress(f"communities: {len(COMMUNITIES)}")
    return made


def _load_communities(admin, staff, mod, members, board_by_slug, rng: random.Random) -> None:
    """The fan clubs: threads and replies in their language, a pinned welcome thread, and
    threads promoted to ideas (one of them shipped), moderated by the demo's moderator."""
    for c, (slug, name, description, rules, accent, club_threads) in enumerate(COMMUNITIES):
        club = communities.create_community(
            admin, slug, name, description=description, rules=rules, accent=accent
        )
        if c == 0:
            communities.appoint_moderator(admin, club, mod)
        for member in members[c::2][:6]:
            communities.join(member, club)
        for t, (title, body, replies, fate) in enumerate(club_threads):
            author = mod if fate == "pin" and c == 0 else members[(c + 2 * t) % len(members)]
            thread = threads.start_thread(author, club, title, body)
            for r, said in enumerate(replies):
                threads.add_reply(members[(c + t + r + 1) % len(members)], thread, club, said)
            if fate == "pin":
                thread.pinned = 1
            elif fate is not None:
                promoter = mod if c == 0 else staff
                board = board_by_slug["mobile-app"]
                idea = promotion.promote_thread(
                    promoter, thread, club, board, title=title, body=body, kind="idea"
                )
                db.session.flush()
                for step in STATUS_PATH[fate]:
                    roadmap.change_status(staff, idea, step.value)
    db.session.flush()


def _backdate(idea: Idea, created: datetime, now: datetime, rng: random.Random) -> None:
    """Spread an idea's history between `created` and now, in order, so timelines read true."""
    db.session.flush()
    span = (now - created).total_seconds()

    def moments(k: int) -> list[datetime]:
        return sorted(created + timedelta(seconds=rng.uniform(0, span)) for _ in range(k))

    changes = list(
        db.session.scalars(
            select(StatusChange).where(StatusChange.idea_id == idea.id).order_by(StatusChange.id)
        )
    )
    for change, when in zip(changes, [created, *moments(len(changes) - 1)], strict=True):
        change.created_at = when
    said = list(db.session.scalars(select(Comment).where(Comment.idea_id == idea.id)))
    for comment, when in zip(said, moments(len(said)), strict=True):
        comment.created_at = when
    for vote in db.session.scalars(select(Vote).where(Vote.idea_id == idea.id)):
        vote.created_at = created + timedelta(seconds=rng.uniform(0, span))
    latest = max([created, *(c.created_at for c in changes), *(c.created_at for c in said)])
    db.session.execute(
        update(Idea)
        .where(Idea.id == idea.id)
        .values(
            created_at=created,
            updated_at=created,
            last_activity_at=latest,
            trending_score=ideas.trending_score(idea.vote_count, created),
        )
    )
