from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required


def home(request):
    raise NotImplementedError


def account_list(request):
    raise NotImplementedError


def account_detail(request, pk: int):
    raise NotImplementedError


login_view = login_not_required(auth_views.LoginView.as_view())
